"""A scheduler that outlives its connection: when the connection closes for good, start over.

nats-py reconnects by itself after a dropped socket, but it closes the client for good on any
error line the server sends (a control line too long, a protocol violation): every
subscription, pull and read on it is then dead, and nothing would ever wake them. A scheduler
has one recovery path, its start (the newest snapshot, then the log's tail), so a closed
connection ends that scheduler instance and a fresh one starts on a fresh connection, under
the same name, from what the log says. A failure to reach the store on the way is retried; an
exception that is not about the store or the connection is a bug and ends the process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from events.aio import cancel_all
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.natserrors import FAILURES
from ffrtmp.scheduler.service import Scheduler, ServiceSettings

log = logging.getLogger(__name__)

WATCH_S: Final = 0.25
"""How often the connection is looked at while the scheduler runs."""
PAUSE_S: Final = 1.0
"""The pause before connecting again."""
_RECOVERABLE: Final = (FfrtmpError, *FAILURES)

Connect = Callable[[], Awaitable[JetStreamEventStore]]


async def run_connected(
    connect: Connect,
    settings: ServiceSettings,
    name: str,
    *,
    started: Callable[[Scheduler], None] | None = None,
    pause_s: float = PAUSE_S,
) -> None:
    """Run a scheduler on a fresh connection after every one that closes; until cancelled.

    ``started`` sees each scheduler instance as it starts (the CLI prints it, tests watch it).
    """
    while True:
        try:
            store = await connect()
        except _RECOVERABLE as exc:
            log.warning("scheduler %s cannot connect: %s; trying again", name, exc)
            await asyncio.sleep(pause_s)
            continue
        async with store:
            scheduler = Scheduler(store, settings, name=name)
            if started is not None:
                started(scheduler)
            await _until_closed(scheduler, store)
        log.warning("scheduler %s lost its connection; connecting again", name)
        await asyncio.sleep(pause_s)


async def _until_closed(scheduler: Scheduler, store: JetStreamEventStore) -> None:
    """Run ``scheduler`` until its connection is closed for good or it fails on the store."""
    task = asyncio.create_task(scheduler.run(), name=f"scheduler {scheduler.name}")
    try:
        while not task.done() and not store.nc.is_closed:
            await asyncio.wait({task}, timeout=WATCH_S)
    finally:
        if not task.done():
            await cancel_all([task], every_s=1.0)  # a lost cancel must not keep it running
    if task.cancelled():
        return
    error = task.exception()
    if error is None:
        return
    if not isinstance(error, _RECOVERABLE):
        raise error
    log.warning("scheduler %s stopped: %s", scheduler.name, error)
