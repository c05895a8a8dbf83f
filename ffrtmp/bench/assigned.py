"""``ffrtmp bench append --history … --consumers N``: an agent's read of its assignments.

Each agent reads its assignments through a durable consumer on the events stream filtered on
``<prefix>.evt.job.*.sched.<agent>``, a filter with a wildcard in the middle. The server may
have to match that filter against every job's subjects (creating the consumer, counting what it
has pending) or walk message blocks to find the next match, so its cost could grow with the
log. On a stream already holding ``history`` events (``history.filled``: 1,000 agents'
assignments among them), this bench creates ``consumers`` such consumers (starting at the
stream's end, as the agent does), then ``probes`` times appends an assignment to one of them
and times the consumer's fetch of it; also the creation of each consumer.
"""

from __future__ import annotations

import time
from typing import Final

import msgspec
import nats
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from events.codec import encode
from events.errors import FfrtmpError
from events.job_events import JobAssigned
from events.subjects import Subjects
from ffrtmp.bench.history import PREFIX, filled
from ffrtmp.bench.stats import percentile
from ffrtmp.bench.workload import SPEC, T0, job_id

FETCH_WAIT_S: Final = 5.0


class AssignedSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Stream sizes, consumers (agents) on each, and how many assignments to time."""

    sizes: tuple[int, ...] = (0, 100_000, 1_000_000)
    consumers: int = 1_000
    probes: int = 300


class AssignedRow(msgspec.Struct, frozen=True, kw_only=True):
    """At one stream size: creating a consumer, and an assignment's append-to-fetch time."""

    history: int
    create_ms_p50: float
    create_ms_p99: float
    fetch_ms_p50: float
    fetch_ms_p99: float


class AssignedReport(msgspec.Struct, frozen=True, kw_only=True):
    """Every size; ``flat`` is the median fetch at the smallest size over the largest's."""

    settings: AssignedSettings
    rows: list[AssignedRow]
    flat: float


async def bench_assigned(settings: AssignedSettings) -> AssignedReport:
    """Each size on a fresh server (filled, restarted with fsync always)."""
    rows = []
    for size in settings.sizes:
        async with filled(size) as url:
            rows.append(await _measure(url, size, settings))
    low, high = rows[0], rows[-1]
    return AssignedReport(
        settings=settings, rows=rows, flat=round(low.fetch_ms_p50 / high.fetch_ms_p50, 3)
    )


async def _measure(url: str, size: int, settings: AssignedSettings) -> AssignedRow:
    subjects = Subjects(PREFIX)
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=30.0)
        created, subs = [], []
        for index in range(settings.consumers):
            start = time.perf_counter()
            subs.append(await _consumer(js, subjects, _agent(index)))
            created.append((time.perf_counter() - start) * 1000)
        fetched = [
            await _probe(nc, subjects, subs[n * 7 % len(subs)], n, _agent(n * 7 % len(subs)))
            for n in range(settings.probes)
        ]
    finally:
        await nc.close()
    return AssignedRow(
        history=size,
        create_ms_p50=round(percentile(created, 0.5), 3),
        create_ms_p99=round(percentile(created, 0.99), 3),
        fetch_ms_p50=round(percentile(fetched, 0.5), 3),
        fetch_ms_p99=round(percentile(fetched, 0.99), 3),
    )


def _agent(index: int) -> str:
    return f"probe-{index:04d}"


async def _consumer(
    js: JetStreamContext, subjects: Subjects, agent: str
) -> JetStreamContext.PullSubscription:
    """The agent service's consumer: durable, explicit acks, from the stream's end."""
    config = ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.NEW)
    return await js.pull_subscribe(
        subjects.assignments_to(agent),
        durable=f"agent-{agent}",
        stream=subjects.events_stream,
        config=config,
    )


async def _probe(
    nc: NatsClient, subjects: Subjects, sub: JetStreamContext.PullSubscription, n: int, agent: str
) -> float:
    """Append one assignment to ``agent``; milliseconds from its ack to its fetch."""
    job = job_id("probe", n)
    event = JobAssigned(job=job, at=T0, agent=agent, attempt=1, budget_s=60.0, spec=SPEC)
    await nc.jetstream().publish(subjects.assignment(job, agent), encode(event))
    start = time.perf_counter()
    (msg,) = await sub.fetch(1, timeout=FETCH_WAIT_S)
    elapsed = (time.perf_counter() - start) * 1000
    if msg.subject != subjects.assignment(job, agent):
        raise FfrtmpError(f"{agent}'s consumer fetched {msg.subject}, not its assignment")
    await msg.ack()
    return elapsed
