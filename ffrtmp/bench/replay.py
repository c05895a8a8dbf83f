"""``ffrtmp bench replay``: the store's replay folded into job states, against a raw read.

The stream holds realistic histories (submitted, assigned, started, completed; about 460
bytes a message with the store's headers) written by the store itself, a window of jobs at a
time as a busy farm interleaves them. Ours is ``store.replay`` (read, decode) folded with
``evolve`` into a dict of job states; raw is nats-py's ordered consumer with a callback, its
fastest public read, counting messages and doing nothing with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Final, NamedTuple

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from events.base import AgentEventBase, SetAside, Unknown
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job import JobState, evolve, initial
from events.streams import events_stream
from events.subjects import Subjects
from ffrtmp.bench.harness import embedded_server, interleaved
from ffrtmp.bench.stats import Comparison, compare, rate
from ffrtmp.bench.workload import EVENTS_PER_JOB, T0, job_id, step

TARGET: Final = 0.7
PREFIX: Final = "bench"


class ReplaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """How many events to replay, how often, and how many jobs are in flight at once."""

    messages: int = 300_000
    rounds: int = 5
    window: int = 1_000


async def bench_replay(settings: ReplaySettings) -> Comparison:
    """Fill one stream, then read it back both ways in interleaved rounds; summarise."""
    async with populated(settings) as (nc, store, jobs):
        count = jobs * EVENTS_PER_JOB
        rates = await interleaved(
            settings.rounds,
            {
                "ours": lambda _: _fold(store, jobs),
                "raw": lambda _: ordered_read(nc, store.subjects, count),
            },
        )
    return compare("replay", count, rates, TARGET)


class Populated(NamedTuple):
    """A filled benchmark stream: the client, the store on it, and how many jobs it holds."""

    nc: NatsClient
    store: JetStreamEventStore
    jobs: int


@contextlib.asynccontextmanager
async def populated(settings: ReplaySettings) -> AsyncIterator[Populated]:
    """A fresh server whose events stream holds ``settings.messages`` events (``populate``)."""
    subjects = Subjects(PREFIX)
    async with embedded_server() as server:
        nc = await nats.connect(server.url)
        try:
            await nc.jetstream().add_stream(events_stream(subjects))
            store = JetStreamEventStore(nc, subjects)
            await store.start()
            yield Populated(nc, store, await populate(store, settings))
        finally:
            await nc.close()


async def populate(store: JetStreamEventStore, settings: ReplaySettings) -> int:
    """Append whole histories, ``window`` jobs at a time, each event expecting the one before."""
    jobs = -(-settings.messages // EVENTS_PER_JOB)
    for first in range(0, jobs, settings.window):
        names = [job_id(PREFIX, i) for i in range(first, min(jobs, first + settings.window))]
        last = dict.fromkeys(names, 0)
        for index in range(EVENTS_PER_JOB):
            items = [step(store.subjects, job, index, T0 + first, last[job]) for job in names]
            for job, result in zip(names, await store.append_many(items), strict=True):
                if isinstance(result, Exception):
                    raise result
                last[job] = result
    return jobs


async def _fold(store: JetStreamEventStore, jobs: int) -> float:
    """``store.replay`` from the start, every job event folded; messages per second."""
    states: dict[str, JobState] = {}
    count = 0
    start = time.perf_counter()
    async for _, event in store.replay(1):
        count += 1
        if isinstance(event, Unknown | SetAside | AgentEventBase):
            continue
        state = states.get(event.job)
        states[event.job] = evolve(state if state is not None else initial(event.job), event)
    elapsed = time.perf_counter() - start
    if len(states) != jobs or count != jobs * EVENTS_PER_JOB:
        raise FfrtmpError(f"replay folded {count} events into {len(states)} jobs, not {jobs}")
    return rate(count, elapsed)


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
