"""A benchmark stream filled with realistic job histories, as a busy farm interleaves them.

Not a benchmark: what the replay, projections, listing and end-to-end benches start from. The
histories are ``workload``'s (submitted, assigned, started, completed), written by the store
itself, ``window`` jobs at a time, in group commits (``events.grouped``: a million events in
about a minute rather than several on a file stream that syncs every write); ``ordered_read``
is the raw read they compare against.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Final, NamedTuple

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from events.grouped import append_grouped
from events.jetstream import JetStreamEventStore
from events.streams import events_stream
from events.subjects import Subjects
from ffrtmp.bench.harness import embedded_server
from ffrtmp.bench.stats import rate
from ffrtmp.bench.workload import EVENTS_PER_JOB, T0, job_id, step

PREFIX: Final = "bench"
WINDOW: Final = 1_000
"""Jobs in flight at once while the histories are written."""


class Populated(NamedTuple):
    """A filled benchmark stream: the client, the store on it, and how many jobs it holds."""

    nc: NatsClient
    store: JetStreamEventStore
    jobs: int


@contextlib.asynccontextmanager
async def populated(messages: int, window: int = WINDOW) -> AsyncIterator[Populated]:
    """A fresh server whose events stream holds ``messages`` events (``populate``)."""
    subjects = Subjects(PREFIX)
    async with embedded_server() as server:
        nc = await nats.connect(server.url)
        try:
            await nc.jetstream().add_stream(events_stream(subjects))
            store = JetStreamEventStore(nc, subjects)
            await store.start()
            yield Populated(nc, store, await populate(store, messages, window))
        finally:
            await nc.close()


async def populate(store: JetStreamEventStore, messages: int, window: int = WINDOW) -> int:
    """Append whole histories, ``window`` jobs at a time, each event expecting the one before."""
    jobs = -(-messages // EVENTS_PER_JOB)
    for first in range(0, jobs, window):
        names = [job_id(PREFIX, i) for i in range(first, min(jobs, first + window))]
        last = dict.fromkeys(names, 0)
        for index in range(EVENTS_PER_JOB):
            items = [step(store.subjects, job, index, T0 + first, last[job]) for job in names]
            for job, result in zip(names, await append_grouped(store, items), strict=True):
                if isinstance(result, Exception):
                    raise result
                last[job] = result
    return jobs


async def ordered_read(nc: NatsClient, subjects: Subjects, count: int) -> float:
    """nats-py's ordered consumer with a callback, until ``count`` messages; per second."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    seen = 0

    async def on_msg(_: Msg) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            done.set_result(None)

    js = nc.jetstream()
    start = time.perf_counter()
    sub = await js.subscribe(
        subjects.all_events, stream=subjects.events_stream, ordered_consumer=True, cb=on_msg
    )
    await done
    elapsed = time.perf_counter() - start
    await sub.unsubscribe()
    return rate(count, elapsed)
