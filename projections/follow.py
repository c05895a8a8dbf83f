"""Feeding a projector from the events stream: catch up to the end, or follow forever.

The read is ``events.reader`` (the store's own raw read, ``(seq, subject, bytes)`` in order),
from the projector's checkpoint + 1. A pump task takes messages as they arrive; the applier
takes all that has arrived (up to ``max_batch``), folds it and converts it to Arrow in a worker
thread (``Projector.prepare``) while the batch before commits in another (``Projector.commit``): the
commit is DuckDB's work, without the GIL, so it overlaps the next batch's Python work. At a
trickle a batch is a few events and lands at once; under load batches grow by themselves,
which is what keeps a rebuild fast.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Final

from nats.aio.client import Client as NatsClient

from events.reader import read_forever, read_to_end
from projections.batch import Prepared
from projections.runner import Projector

MAX_BATCH: Final = 20_000
"""Events applied in one transaction at most."""

OnBatch = Callable[[int, int], None]
"""Called after each batch lands, with the new checkpoint and the batch's size."""


async def catch_up(
    projector: Projector,
    nc: NatsClient,
    *,
    max_batch: int = MAX_BATCH,
    on_batch: OnBatch | None = None,
) -> int:
    """Apply everything from the checkpoint to the stream's end as of now; events applied."""
    read = read_to_end(
        nc, projector.stream, projector.subjects.all_events, projector.checkpoint() + 1
    )
    return await _pump(projector, read, max_batch, on_batch)


async def follow(
    projector: Projector,
    nc: NatsClient,
    *,
    max_batch: int = MAX_BATCH,
    on_batch: OnBatch | None = None,
) -> None:
    """Apply every event from the checkpoint on, waiting for new ones, until cancelled."""
    read = read_forever(
        nc, projector.stream, projector.subjects.all_events, projector.checkpoint() + 1
    )
    await _pump(projector, read, max_batch, on_batch)


async def _pump(
    projector: Projector,
    read: AsyncGenerator[tuple[int, str, bytes], None],
    max_batch: int,
    on_batch: OnBatch | None,
) -> int:
    """Read in one task; prepare each batch while the one before commits; events applied."""
    buffer = _Buffer(max_batch)
    reader = asyncio.create_task(buffer.fill(read))
    committing: asyncio.Task[None] | None = None
    applied = 0
    try:
        while batch := await buffer.take():
            prepared = await asyncio.to_thread(projector.prepare_raw, batch)
            if committing is not None:
                await committing
            if prepared is not None:
                committing = asyncio.create_task(_commit(projector, prepared, on_batch))
            applied += len(batch)
        if committing is not None:
            await committing
        await reader  # surfaces the reader's error, if it ended on one
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        if committing is not None and not committing.done():
            # The commit's thread runs on; ``Projector.close`` waits for it.
            committing.cancel()
    return applied


async def _commit(projector: Projector, prepared: Prepared, on_batch: OnBatch | None) -> None:
    checkpoint = await asyncio.to_thread(projector.commit, prepared)
    if on_batch is not None:
        on_batch(checkpoint, prepared.events)


class _Buffer:
    """Messages read and not yet applied; the reader waits while two batches are waiting."""

    def __init__(self, max_batch: int) -> None:
        self._items: list[tuple[int, str, bytes]] = []
        self._max = max_batch
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._ended = False

    async def fill(self, read: AsyncGenerator[tuple[int, str, bytes], None]) -> None:
        """Append what ``read`` yields until it ends (or fails: the applier sees it)."""
        try:
            async with contextlib.aclosing(read) as items:
                async for item in items:
                    self._items.append(item)
                    self._ready.set()
                    if len(self._items) >= 2 * self._max:
                        self._room.clear()
                        await self._room.wait()
        finally:
            self._ended = True
            self._ready.set()

    async def take(self) -> list[tuple[int, str, bytes]]:
        """What has arrived, up to a batch; waits for something; empty once the read ended."""
        while not self._items and not self._ended:
            self._ready.clear()
            await self._ready.wait()
        batch = self._items[: self._max]
        del self._items[: self._max]
        self._room.set()
        return batch
