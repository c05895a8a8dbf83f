"""``ffrtmp bench schedule``: the scheduler's throughput, latency, restart time and memory.

Each server-backed measurement runs on its own embedded nats-server (``harness``):

- placements: a backlog of queued jobs and a fleet of registered, heartbeating agents, then a
  leading ``Scheduler`` timed from the moment it leads until every placement is stored (each
  a ``JobAssigned`` on its agent's assignment subject, appended under optimistic concurrency
  and fsynced: the assignment is the dispatch); beside it raw ``publish_async`` of the same
  message per placement, and the pure core (``plan`` and ``apply``, no I/O);
- submit to dispatch: ``SubmitJob`` commands at a steady rate, each timed from its publish to
  its assignment's arrival on a core subscription, in one process on one clock;
- restart: a long log of finished histories (written on a default-fsync server for speed:
  reading does not depend on fsync), a full replay, a snapshot, a tail, then a fresh follower's
  recovery (snapshot + tail), at the full history and at a tenth of it to show it stays flat;
- memory: what a queued job costs in the core, by ``tracemalloc`` and by RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import math
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Final

import msgspec
import nats
import psutil
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from events import dedup
from events.agent_events import AgentRegistered
from events.aio import cancel_all
from events.base import JobEventBase, Unknown
from events.codec import decode_event, encode
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job_events import (
    JobAssigned,
    JobCompleted,
    JobProgressed,
    JobResults,
    JobStarted,
    JobSubmitted,
)
from events.spec import JobSpec
from events.store import Append
from events.subjects import SCHEDULER_WRITER, Subjects
from events.work import Heartbeat
from ffrtmp.bench.harness import (
    Machine,
    embedded_server,
    machine,
    submit_steadily,
    until,
)
from ffrtmp.bench.stats import median, percentile, rate, ratio
from ffrtmp.bench.workload import CAPS, SCENARIOS, headers, job_spec
from ffrtmp.scheduler.core import SchedulerCore
from ffrtmp.scheduler.service import Scheduler, ServiceSettings

TARGETS: Final = {
    "placements_per_s": 5_000.0,  # at least
    "p99_submit_to_dispatch_ms": 20.0,  # at most
    "restart_s": 2.0,  # at most
    "bytes_per_queued_job": 1024.0,  # at most
}
RESULTS: Final = JobResults(wall_s=38.2, frames=900, encode_fps=23.5, output_bytes=22_500_000)
HEARTBEAT_S: Final = 5.0  # as TimerSettings.heartbeat_s, so that no agent is declared lost
WEEK_S: Final = 7 * 86_400.0  # how long ago the history's jobs finished
EVENTS_PER_HISTORY: Final = 6
WINDOW: Final = 1_000  # finished jobs in flight at once while the history was written


class ScheduleSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How big each measurement is; the defaults are the issue's."""

    jobs: int = 100_000
    agents: int = 1_000
    rate: float = 500.0  # submissions per second in the latency measurement
    seconds: float = 20.0
    warmup_s: float = 2.0  # submissions before the counted ones: the first snapshot, the consumer
    history: int = 1_000_000
    rounds: int = 3  # latency and restart rounds
    pure_rounds: int = 5
    live: int = 5_000  # queued jobs in the history, the same at both history sizes
    tail: int = 10_000  # events appended after the snapshot
    chunk: int = 5_000  # appends per pipelined round when filling a log
    plan_batch: int = 2_000  # as ServiceSettings.plan_batch: the raw side's round size


class ScheduleReport(msgspec.Struct, frozen=True, kw_only=True):
    """Every figure (medians where there were rounds), each round, the machine, the targets."""

    benchmark: str = "schedule"
    placements_per_s: float
    raw_placements_per_s: float
    placements_vs_raw_ratio: float
    pure_placements_per_s: float
    plan_pass_ms: float  # one pass placing one job among all the agents: its fixed cost
    tick_ms: float  # one clock tick with every job of the backlog assigned
    recover_s: float  # the placing scheduler's start, the backlog in the log
    p50_submit_to_dispatch_ms: float
    p99_submit_to_dispatch_ms: float
    max_submit_to_dispatch_ms: float
    submitted: int
    dispatched: int
    restart_s: float
    full_replay_s: float
    history_events: int
    restart_s_small_history: float
    full_replay_s_small_history: float
    small_history_events: int
    jobs_in_memory_after_restart: int
    bytes_per_queued_job: float
    rss_bytes_per_queued_job: float
    bytes_per_queued_job_bare_spec: float
    history_server_fsync: str = "default: reading does not depend on fsync"
    targets: dict[str, float]
    rounds: dict[str, list[float]]
    settings: ScheduleSettings
    machine: Machine


class _Latency(msgspec.Struct, frozen=True, kw_only=True):
    p50_ms: float
    p99_ms: float
    max_ms: float
    submitted: int
    dispatched: int


class _Restart(msgspec.Struct, frozen=True, kw_only=True):
    events: int
    full_replay_s: float
    restarts: list[float]
    jobs_in_memory: int


# --- what the log holds ---------------------------------------------------------------------


def bare_spec(index: int) -> JobSpec:
    """The smallest spec, for comparison: a test pattern, no output, no labels."""
    return JobSpec(scenario=SCENARIOS[index % len(SCENARIOS)])


def agent_id(index: int) -> str:
    """The simulated agent ``index``."""
    return f"agent-{index:04d}"


def job_append(
    subjects: Subjects, writer: str, event: JobEventBase, msg_id: str, expected: int
) -> Append:
    """A job event as the store appends it, expecting ``expected`` on the job's subjects."""
    return Append(
        subject=subjects.job_event(event.job, writer),
        event=event,
        msg_id=msg_id,
        expected=expected,
        expected_subject=subjects.job_events(event.job),
    )


def submitted(subjects: Subjects, job: str, index: int, at: float) -> Append:
    """A job's first event, as the scheduler appends it (expecting nothing before it)."""
    event = JobSubmitted(job=job, at=at, cause=f"cmd-{job}", spec=job_spec(index), by="bench")
    return job_append(subjects, SCHEDULER_WRITER, event, f"{job}:submit", 0)


def registered(subjects: Subjects, agents: int, slots: int, at: float) -> list[Append]:
    """Each simulated agent's registration: CPU encoders, ``slots`` jobs at a time."""
    return [
        Append(
            subject=subjects.agent_event(agent_id(a)),
            event=AgentRegistered(agent=agent_id(a), at=at, capabilities=CAPS, slots=slots),
            msg_id=f"{agent_id(a)}:registered",
        )
        for a in range(agents)
    ]


def _finished(job: str, agent: str, index: int, at: float) -> list[JobEventBase]:
    """A job's usual life: submitted, assigned, started, progressed twice, completed."""
    return [
        JobSubmitted(job=job, at=at, cause=f"cmd-{job}", spec=job_spec(index)),
        JobAssigned(job=job, at=at + 1, cause="sched", agent=agent, attempt=1, budget_s=600.0),
        JobStarted(job=job, at=at + 2, cause="dispatch", agent=agent, attempt=1),
        JobProgressed(job=job, at=at + 20, cause="ffmpeg", agent=agent, attempt=1, percent=25.0),
        JobProgressed(job=job, at=at + 60, cause="ffmpeg", agent=agent, attempt=1, percent=75.0),
        JobCompleted(job=job, at=at + 80, cause="ffmpeg", agent=agent, attempt=1, results=RESULTS),
    ]


def histories(
    subjects: Subjects, tag: str, jobs: int, agents: int, last_seq: int, at: float
) -> Iterator[Append]:
    """Finished histories, a window of jobs interleaved, each event expecting the one before.

    The expected sequences assume that the stream's last sequence is ``last_seq`` and that
    nothing else writes meanwhile, so that the events land in the order given.
    """
    seq = last_seq
    for first in range(0, jobs, WINDOW):
        window = range(first, min(jobs, first + WINDOW))
        lives = {i: _finished(f"{tag}-{i:07d}", agent_id(i % agents), i, at + i) for i in window}
        last = dict.fromkeys(window, 0)
        for step in range(EVENTS_PER_HISTORY):
            for i in window:
                event = lives[i][step]
                writer = SCHEDULER_WRITER if step < 2 else agent_id(i % agents)
                yield job_append(subjects, writer, event, f"{event.job}:{step}", last[i])
                seq += 1
                last[i] = seq


async def append_all(store: JetStreamEventStore, items: Iterator[Append], chunk: int) -> int:
    """Append pipelined, ``chunk`` at a time; any refusal is a benchmark error. How many."""
    count = 0
    while batch := list(itertools.islice(items, chunk)):
        failed = [r for r in await store.append_many(batch) if isinstance(r, Exception)]
        if failed:
            raise FfrtmpError(f"{len(failed)} appends refused while filling, first: {failed[0]}")
        count += len(batch)
    return count


# --- the simulated fleet and the scheduler ---------------------------------------------------


async def _heartbeats(nc: NatsClient, subjects: Subjects, agents: int, slots: int) -> None:
    """Every agent's heartbeat every few seconds, spread over the interval as real ones are."""
    groups = [range(a, min(agents, a + 10)) for a in range(0, agents, 10)]
    while True:
        for group in groups:
            for a in group:
                beat = Heartbeat(agent=agent_id(a), at=time.time(), slots=slots, free_slots=slots)
                await nc.publish(subjects.heartbeat(agent_id(a)), encode(beat))
            await asyncio.sleep(HEARTBEAT_S / len(groups))


@contextlib.asynccontextmanager
async def fleet(
    url: str, subjects: Subjects, agents: int, slots: int
) -> AsyncIterator[tuple[JetStreamEventStore, NatsClient]]:
    """The store (streams created), a client of the bench's own, agents registered and beating."""
    store = await JetStreamEventStore.connect(url, subjects, ensure=True)
    nc = await nats.connect(url)
    beating = asyncio.create_task(_heartbeats(nc, subjects, agents, slots))
    try:
        await append_all(store, iter(registered(subjects, agents, slots, time.time())), 5_000)
        yield store, nc
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await nc.close()
        await store.close()


@contextlib.asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    """The scheduler's ``run`` as a task, cancelled on the way out."""
    task = asyncio.create_task(scheduler.run(), name=scheduler.name)
    try:
        yield scheduler
    finally:
        await cancel_all([task], every_s=5.0)  # a lost cancel (3.11's wait_for) would hang


# --- placements -------------------------------------------------------------------------------


async def bench_placements(settings: ScheduleSettings) -> tuple[float, float, float]:
    """A backlog placed by a leading scheduler, then raw publishes of the same messages.

    Returns ours and raw placements per second, and the scheduler's recover seconds.
    """
    subjects = Subjects("bench")
    slots = math.ceil(settings.jobs / settings.agents)
    async with (
        embedded_server() as server,
        fleet(server.url, subjects, settings.agents, slots) as (store, nc),
    ):
        now = time.time()
        backlog = (submitted(subjects, f"job-{i:07d}", i, now) for i in range(settings.jobs))
        await append_all(store, backlog, settings.chunk)
        ours, recover_s = await _placing(store, settings.jobs)
        raw = await _raw_placing(nc, subjects, settings)
    return ours, raw, recover_s


async def _placing(store: JetStreamEventStore, jobs: int) -> tuple[float, float]:
    """Placements per second from leading to the last assignment stored; and recover seconds."""
    scheduler = Scheduler(store, ServiceSettings(use_lease=False), name="bench-placing")
    started = time.perf_counter()
    async with running(scheduler):
        await scheduler.ready.wait()
        recover_s = time.perf_counter() - started
        await scheduler.leading.wait()
        start = time.perf_counter()
        await until(lambda: scheduler.stats.placements >= jobs, 60 + jobs / 50, "placements")
        elapsed = time.perf_counter() - start
    stats = scheduler.stats
    if stats.conflicts or stats.rejections or stats.placements != jobs:
        raise FfrtmpError(f"placing went wrong: {msgspec.json.encode(stats).decode()}")
    return rate(jobs, elapsed), recover_s


Publish = tuple[str, bytes, dict[str, str]]


async def _raw_placing(nc: NatsClient, subjects: Subjects, settings: ScheduleSettings) -> float:
    """``publish_async`` of an assignment per job, a round per batch.

    The same stream as ours, after ours: assignments of new jobs carrying their specs, on their
    agents' assignment subjects (expecting sequence 0), with the store's headers.
    """
    ready = [_raw_assignment(subjects, i, settings.agents) for i in range(settings.jobs)]
    js = nc.jetstream()
    start = time.perf_counter()
    for first in range(0, len(ready), settings.plan_batch):
        batch = ready[first : first + settings.plan_batch]
        await asyncio.gather(*[await js.publish_async(s, d, headers=h) for s, d, h in batch])
    return rate(len(ready), time.perf_counter() - start)


def _raw_assignment(subjects: Subjects, index: int, agents: int) -> Publish:
    job, agent, now = f"raw-{index:07d}", agent_id(index % agents), time.time()
    event = JobAssigned(
        job=job,
        at=now,
        cause="seq:1",
        agent=agent,
        attempt=1,
        budget_s=600.0,
        spec=job_spec(index),
    )
    msg_id = dedup.scheduler_job_event(job, 1, "JobAssigned", agent)
    item = job_append(subjects, SCHEDULER_WRITER, event, msg_id, 0)
    return (subjects.assignment(job, agent), encode(event), headers(item))


def _loaded_core(jobs: int, agents: int, now: float) -> tuple[SchedulerCore, int]:
    """A core with the agents registered and the jobs queued; the last sequence applied."""
    core, subjects = SchedulerCore(), Subjects("pure")
    appends = registered(subjects, agents, max(1, math.ceil(jobs / agents)), now)
    appends += [submitted(subjects, f"job-{i:07d}", i, now) for i in range(jobs)]
    for seq, item in enumerate(appends, 1):
        core.apply(seq, item.event, now)
    return core, len(appends)


def pure_placements(jobs: int, agents: int) -> tuple[float, float]:
    """Placements per second of ``plan`` and ``apply`` alone; then one tick's milliseconds."""
    now = time.time()
    core, seq = _loaded_core(jobs, agents, now)
    placed, start = 0, time.perf_counter()
    while (plan := core.plan(now, 2_000)).decisions:
        core.planned(plan)
        for event in (e for d in plan.decisions for e in d.events):
            seq += 1
            placed += core.apply(seq, event, now)
    placing = rate(placed, time.perf_counter() - start)
    start = time.perf_counter()
    core.ticked(core.tick(now))
    return placing, (time.perf_counter() - start) * 1000


def plan_pass_ms(agents: int, passes: int = 21) -> float:
    """The median milliseconds of a planning pass that places one job among ``agents``."""
    now = time.time()
    core, seq = _loaded_core(0, agents, now)
    times = []
    for i in range(passes):
        seq += 1
        core.apply(seq, submitted(Subjects("pure"), f"one-{i}", i, now).event, now)
        start = time.perf_counter()
        plan = core.plan(now)
        core.planned(plan)
        times.append((time.perf_counter() - start) * 1000)
        for event in (e for d in plan.decisions for e in d.events):
            seq += 1
            core.apply(seq, event, now)
    return median(times)


# --- submit to dispatch ------------------------------------------------------------------------


async def bench_latency(settings: ScheduleSettings, round_: int) -> _Latency:
    """Steady submissions to a leading scheduler; each job's publish-to-dispatch time."""
    subjects = Subjects("bench")
    submissions = settings.rate * (settings.warmup_s + settings.seconds)
    slots = max(20, math.ceil(2 * submissions / settings.agents))
    arrived: dict[str, float] = {}

    async def on_dispatch(msg: Msg) -> None:
        at = time.perf_counter()
        parsed = subjects.parse_job_subject(msg.subject)
        if parsed is not None:
            arrived.setdefault(parsed[0], at)

    async with (
        embedded_server() as server,
        fleet(server.url, subjects, settings.agents, slots) as (store, nc),
    ):
        scheduler = Scheduler(store, ServiceSettings(use_lease=False), name="bench-latency")
        async with running(scheduler):
            await scheduler.leading.wait()
            sub = await nc.subscribe(subjects.all_assignments, cb=on_dispatch)
            sent = await submit_steadily(
                nc,
                subjects,
                rate=settings.rate,
                seconds=settings.seconds,
                warmup_s=settings.warmup_s,
                tag=f"r{round_}",
            )
            await until(lambda: sent.keys() <= arrived.keys(), 10.0, "the last dispatches")
            await sub.unsubscribe()
    latencies = [(arrived[job] - t) * 1000 for job, t in sent.items() if job in arrived]
    return _Latency(
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        max_ms=max(latencies),
        submitted=len(sent),
        dispatched=len(latencies),
    )


# --- restart -----------------------------------------------------------------------------------


async def bench_restart(settings: ScheduleSettings, events: int, live: int) -> _Restart:
    """Fill a log of about ``events``; full replay, snapshot, tail, then timed restarts."""
    subjects = Subjects("hist")
    past = time.time() - WEEK_S  # long finished: the scheduler forgets them after replaying
    async with embedded_server(default_sync=True) as server:
        store = await JetStreamEventStore.connect(server.url, subjects, ensure=True)
        async with store:
            agents = registered(subjects, settings.agents, 20, past)
            queued = [submitted(subjects, f"live-{i:07d}", i, time.time()) for i in range(live)]
            jobs = (events - len(agents) - live) // EVENTS_PER_HISTORY
            old = histories(subjects, "old", jobs, settings.agents, len(agents) + live, past)
            written = await append_all(store, itertools.chain(agents, queued, old), settings.chunk)
            follower = _follower(store)
            full_replay_s = await follower.recover()
            await follower.snapshot()
            tail = min(settings.tail, events // 10) // EVENTS_PER_HISTORY
            new = histories(subjects, "new", tail, settings.agents, written, past)
            await append_all(store, new, settings.chunk)
            restarts = []
            for _ in range(settings.rounds):
                follower = _follower(store)
                restarts.append(await follower.recover())
    in_memory = len(follower.core.jobs)
    return _Restart(
        events=written, full_replay_s=full_replay_s, restarts=restarts, jobs_in_memory=in_memory
    )


def _follower(store: JetStreamEventStore) -> Scheduler:
    return Scheduler(store, ServiceSettings(lead=False), name="bench-follower")


# --- memory ------------------------------------------------------------------------------------


def queued_job_bytes(jobs: int, spec: Callable[[int], JobSpec] = job_spec) -> tuple[float, float]:
    """Bytes per queued job in a fresh core, by tracemalloc and by RSS, decoding as a follower.

    RSS first, on memory the process has not used yet; then tracemalloc on a second core.
    """
    now = time.time()
    data = [
        encode(JobSubmitted(job=f"job-{i:07d}", at=now, cause=f"cmd-{i}", spec=spec(i)))
        for i in range(jobs)
    ]
    gc.collect()
    before = _rss()
    core = _queued_core(data, now)
    gc.collect()
    rss = (_rss() - before) / jobs
    del core
    gc.collect()
    tracemalloc.start()
    try:
        traced = tracemalloc.get_traced_memory()[0]
        core = _queued_core(data, now)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - traced
        del core
    finally:
        tracemalloc.stop()
    return traced / jobs, rss


def _queued_core(data: Sequence[bytes], now: float) -> SchedulerCore:
    core = SchedulerCore()
    for seq, item in enumerate(data, 1):
        event = decode_event(item)
        if isinstance(event, Unknown):
            raise FfrtmpError(f"a submission did not decode: {event.type}")
        core.apply(seq, event, now)
    if core.queued != len(data):
        raise FfrtmpError(f"{core.queued} of {len(data)} submissions queued")
    return core


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


# --- all of it ---------------------------------------------------------------------------------


async def bench_schedule(settings: ScheduleSettings) -> ScheduleReport:
    """Every measurement in turn, memory first, while the process has not grown yet."""
    traced, rss = queued_job_bytes(settings.jobs)
    bare, _ = queued_job_bytes(settings.jobs, bare_spec)
    pure = [pure_placements(settings.jobs, settings.agents) for _ in range(settings.pure_rounds)]
    ours, raw, recover_s = await bench_placements(settings)
    latency = [await bench_latency(settings, r) for r in range(settings.rounds)]
    small_events = settings.history // 10
    live = min(settings.live, small_events // 10)
    small = await bench_restart(settings, small_events, live)
    large = await bench_restart(settings, settings.history, live)
    rounds = {
        "pure_placements_per_s": [p for p, _ in pure],
        "p50_submit_to_dispatch_ms": [r.p50_ms for r in latency],
        "p99_submit_to_dispatch_ms": [r.p99_ms for r in latency],
        "restart_s": large.restarts,
        "restart_s_small_history": small.restarts,
    }
    return ScheduleReport(
        placements_per_s=round(ours, 1),
        raw_placements_per_s=round(raw, 1),
        placements_vs_raw_ratio=round(ratio(ours, raw), 3),
        pure_placements_per_s=round(median(rounds["pure_placements_per_s"]), 1),
        plan_pass_ms=round(plan_pass_ms(settings.agents), 3),
        tick_ms=round(median([t for _, t in pure]), 2),
        recover_s=round(recover_s, 3),
        p50_submit_to_dispatch_ms=round(median(rounds["p50_submit_to_dispatch_ms"]), 2),
        p99_submit_to_dispatch_ms=round(median(rounds["p99_submit_to_dispatch_ms"]), 2),
        max_submit_to_dispatch_ms=round(max(r.max_ms for r in latency), 2),
        submitted=sum(r.submitted for r in latency),
        dispatched=sum(r.dispatched for r in latency),
        restart_s=round(median(large.restarts), 3),
        full_replay_s=round(large.full_replay_s, 3),
        history_events=large.events,
        restart_s_small_history=round(median(small.restarts), 3),
        full_replay_s_small_history=round(small.full_replay_s, 3),
        small_history_events=small.events,
        jobs_in_memory_after_restart=large.jobs_in_memory,
        bytes_per_queued_job=round(traced, 1),
        rss_bytes_per_queued_job=round(rss, 1),
        bytes_per_queued_job_bare_spec=round(bare, 1),
        targets=TARGETS,
        rounds={name: [round(v, 3) for v in values] for name, values in rounds.items()},
        settings=settings,
        machine=machine(),
    )
