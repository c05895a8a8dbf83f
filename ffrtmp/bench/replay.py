"""``ffrtmp bench replay``: the store's replay folded into job states, against a raw read.

The stream holds realistic histories (submitted, assigned, started, completed; about 460
bytes a message with the store's headers) written by the store itself, a window of jobs at a
time as a busy farm interleaves them. Ours is ``store.replay`` (read, decode) folded with
``evolve`` into a dict of job states; raw is nats-py's ordered consumer with a callback, its
fastest public read, counting messages and doing nothing with them.
"""

from __future__ import annotations

import time
from typing import Final

import msgspec

from events.base import AgentEventBase, SetAside, Unknown
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job import JobState, evolve, initial
from ffrtmp.bench.fill import ordered_read, populated
from ffrtmp.bench.harness import interleaved
from ffrtmp.bench.stats import Comparison, compare, rate
from ffrtmp.bench.workload import EVENTS_PER_JOB

TARGET: Final = 0.7


class ReplaySettings(msgspec.Struct, frozen=True, kw_only=True):
    """How many events to replay, how often, and how many jobs are in flight at once."""

    messages: int = 300_000
    rounds: int = 5
    window: int = 1_000


async def bench_replay(settings: ReplaySettings) -> Comparison:
    """Fill one stream, then read it back both ways in interleaved rounds; summarise."""
    async with populated(settings.messages, settings.window) as (nc, store, jobs):
        count = jobs * EVENTS_PER_JOB
        rates = await interleaved(
            settings.rounds,
            {
                "ours": lambda _: _fold(store, jobs),
                "raw": lambda _: ordered_read(nc, store.subjects, count),
            },
        )
    return compare("replay", count, rates, TARGET)


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
