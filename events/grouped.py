"""Group commits: many independent appends stored as atomic batches, one fsync a batch.

A scheduler pass decides up to thousands of independent events at once (a placement pass, a
round of commands, a tick). Appended one by one, each is its own fsynced write, and the pass
waits on the disk once per event. An atomic batch is written and synced as one: measured on
nats-server 2.15 (file stream, ``sync_interval: always``), 1,000 appends took 164–173 ms one
by one and 26–28 ms as one batch (``ffrtmp bench append`` reproduces it, ``grouped``). A batch
commit has a floor of about 5 ms, though, where a few pipelined appends take 1–2 ms (batches
of 2 to 50 timed against ``append_many`` of the same: they cross between 10 and 20): below
``BATCH_MIN`` items they go one by one, so a quiet farm's single decisions wait no longer.

A batch is all or nothing, so it only carries what an ``append_many`` would have stored
anyway, with the same outcome for each item:

- At most one item per job (or per other subject). The server checks each expected sequence
  against the log as it was before the batch, so two appends to one job in a batch would both
  pass where the second must conflict (an unchecked one too: it moves the job's last sequence).
  A job's repeat goes after the batches, one by one, as it came after its first one anyway.
- Only items whose check covers their own job or subject: one checked against a wider filter
  could see another item of the batch, so a call holding one is sent item by item.
- A batch the server refuses (an expected sequence that moved, a ``msg_id`` it has seen: a
  decision made again after a takeover) is appended again item by item, which tells each
  item's outcome apart: the rest land, the conflict conflicts, the duplicate is found.
- A batch with no answer (an outage) is that outage for each of its items, as it is for each
  item of a pipelined ``append_many``: it may or may not be stored, and the ``msg_id``s make
  the next try safe either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from events.errors import BatchFailed, StoreUnavailable
from events.store import Append, EventStore
from events.subjects import parse_job_subject

BATCH_MAX: Final = 1000
"""nats-server's largest atomic batch (``max_batch_size``); a larger one is refused whole."""
BATCH_MIN: Final = 32
"""Fewer items than this are appended one by one: a batch's commit costs more than theirs."""


async def append_grouped(
    store: EventStore, items: Sequence[Append], limit: int = BATCH_MAX, least: int = BATCH_MIN
) -> list[int | Exception]:
    """Store independent items as ``append_many`` would, in batches of ``least`` to ``limit``.

    Per item, in order: its stream sequence, or the error ``append_many`` would give it.
    """
    keys = [_key(item) for item in items]
    if None in keys:
        return await store.append_many(items)
    results: list[int | Exception | None] = [None] * len(items)
    batched: list[int] = []
    repeats: list[int] = []
    seen: set[str | None] = set()
    for index, key in enumerate(keys):
        (repeats if key in seen else batched).append(index)
        seen.add(key)
    for first in range(0, len(batched), limit):
        chunk = batched[first : first + limit]
        stored = await _batch(store, [items[i] for i in chunk], least)
        for index, result in zip(chunk, stored, strict=True):
            results[index] = result
    if repeats:
        stored = await store.append_many([items[i] for i in repeats])
        for index, result in zip(repeats, stored, strict=True):
            results[index] = result
    done = [result for result in results if result is not None]
    assert len(done) == len(items)  # noqa: S101 -- every item is in a batch or a repeat
    return done


def _key(item: Append) -> str | None:
    """What an item's append can move or is checked against; None: wider than its own job."""
    if parse_job_subject(item.subject) is not None:
        job = ".".join(item.subject.split(".")[:4])  # <prefix>.evt.job.<job>
        return job if item.expected_subject in {None, f"{job}.>"} else None
    return item.subject if item.expected_subject in {None, item.subject} else None


async def _batch(store: EventStore, items: list[Append], least: int) -> list[int | Exception]:
    """One atomic batch; item by item when it is small or the server refuses it as a whole."""
    if len(items) < max(2, least):
        return await store.append_many(items)
    try:
        return list(await store.append_batch(items))
    except BatchFailed:
        return await store.append_many(items)
    except StoreUnavailable as exc:
        return [exc] * len(items)
