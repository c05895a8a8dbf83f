"""``ffrtmp bench e2e``: whole jobs through the farm, with only FFmpeg left out.

Every part is the real one on an embedded nats-server (fsync on every write): ``SubmitJob``
asked of the leading ``Scheduler`` through the client's door (``client.submit``, as the CLI and
the API send it: decided at once, no command stored), and ``AgentService`` agents pulling
their assignments (``JobAssigned``, each its own dispatch) from their durable consumers and
writing ``JobStarted`` and ``JobCompleted`` through ``JobWriter`` under the per-job concurrency
check. The engine is the scripted one with attempts
that end at once (no milestones, no log), so what is measured is ffrtmp's own cost per job.

- burst: ``jobs`` submits sent as fast as the scheduler answers them; ``jobs_per_s`` is
  jobs over the seconds from the first submit to the last completion the agents stored; each
  round runs once more on a server with the default fsync, to show what fsync-always costs;
- steady: ``rate`` commands a second for ``seconds`` (after ``warmup_s`` uncounted), each timed
  from its submit to the ``JobStarted`` of its job arriving on a core subscription, one clock;
  the steady rounds start after the disk is synced, so the bursts' writeback is not in them.

Everything runs in one process and one event loop (scheduler, agents, submitter, observer), as
the scheduler benchmark does; each round has a fresh server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import Final

import msgspec
import nats
import psutil
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from agent.attempt import AttemptSettings
from agent.scripted import Behaviour, ScriptedEngine
from agent.service import AgentService, AgentSettings
from events import subjects as wire
from events.admit import read_event
from events.aio import background
from events.commands import SubmitJob
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job_events import JobStarted
from events.subjects import Subjects
from ffrtmp.bench.fill import populate
from ffrtmp.bench.harness import Machine, embedded_server, machine, submit_steadily, until
from ffrtmp.bench.stats import median, percentile, rate
from ffrtmp.bench.workload import CAPS, job_spec
from ffrtmp.client.submit import submit
from ffrtmp.scheduler.service import Scheduler, ServiceSettings

TARGETS: Final = {
    "jobs_per_s": 2_000.0,  # at least
    "p99_submit_to_start_ms": 10.0,  # at most
    "writes_per_job": 4.0,  # at most
    "limit_ratio": 0.8,  # at least
    "cpu_ms_per_job": 1.5,  # at most
    "flat_ratio": 0.9,  # at least
}
NO_OP: Final = Behaviour(run_s=0.0, milestones=())
PUBLISH_WINDOW: Final = 1_000  # submits (or raw publishes) in flight at once
ACK_TIMEOUT_S: Final = 60.0  # a window not acknowledged by then is a failed run, not a hang


class E2ESettings(msgspec.Struct, frozen=True, kw_only=True):
    """How big each measurement is; the defaults are the issue's."""

    jobs: int = 20_000  # the burst
    agents: int = 10
    slots: int = 50  # per agent
    rate: float = 200.0  # steady submissions per second
    seconds: float = 10.0
    warmup_s: float = 2.0
    rounds: int = 3
    full_log_events: int = 1_000_000  # the log the flat-cost burst runs on; 0 skips that burst


class E2EReport(msgspec.Struct, frozen=True, kw_only=True):
    """Medians over the rounds, each round, the machine, the targets."""

    benchmark: str = "e2e"
    jobs_per_s: float
    jobs_per_s_default_fsync: float  # the same burst on a server without sync_interval: always
    jobs_per_s_full_log: float  # the same burst on a log already holding full_log_events
    flat_ratio: float  # jobs_per_s_full_log / jobs_per_s: per-job cost flat in history is 1
    writes_per_job: float  # messages stored (events, commands, work) per job of the burst
    raw_fsync_msgs_per_s: float  # nats-py publishing as many fsynced messages, same server
    limit_ratio: float  # jobs_per_s * writes_per_job / raw_fsync_msgs_per_s
    cpu_ms_per_job: float  # CPU of every process (this one and nats-server) over the burst
    p50_submit_to_start_ms: float
    p99_submit_to_start_ms: float
    max_submit_to_start_ms: float
    submitted: int  # counted steady submissions, over the rounds; every one started
    targets: dict[str, float]
    rounds: dict[str, list[float]]
    settings: E2ESettings
    machine: Machine


class _Farm(msgspec.Struct, kw_only=True):
    """One round's farm: the store, a client of the bench's own, the agents, the server's pid."""

    store: JetStreamEventStore
    nc: NatsClient
    agents: list[AgentService]
    server_pid: int

    @property
    def completed(self) -> int:
        return sum(agent.stats.completed for agent in self.agents)


@contextlib.asynccontextmanager
async def farm(
    settings: E2ESettings, tag: str, *, default_sync: bool = False, log_events: int = 0
) -> AsyncIterator[_Farm]:
    """A fresh server, its streams (``log_events`` in the log), a leading scheduler, agents."""
    subjects = Subjects("bench")
    async with embedded_server(default_sync=default_sync) as server:
        store = await JetStreamEventStore.connect(server.url, subjects, ensure=True)
        if log_events:
            await populate(store, log_events)
        nc = await nats.connect(server.url)
        agent_settings = AgentSettings(
            slots=settings.slots, keep_logs=False, attempt=AttemptSettings(poll_s=0.05)
        )
        agents = [
            AgentService(
                store.nc,
                store,
                subjects,
                f"{tag}-{a:03d}",
                CAPS,
                ScriptedEngine(NO_OP),
                agent_settings,
            )
            for a in range(settings.agents)
        ]
        try:
            for agent in agents:
                await agent.start()
            scheduler = Scheduler(store, ServiceSettings(use_lease=False), name=f"bench-{tag}")
            async with background(scheduler.run(), scheduler.name):
                await scheduler.leading.wait()
                pid = int(server.pid_path.read_text().strip())
                yield _Farm(store=store, nc=nc, agents=agents, server_pid=pid)
        finally:
            for agent in agents:
                await agent.stop(deregister=False)
            await nc.close()
            await store.close()


def _submit(job: str, index: int, tag: str) -> SubmitJob:
    """A varied CPU job's ``SubmitJob``."""
    return SubmitJob(id=f"cmd-{job}", job=job, at=time.time(), spec=job_spec(index, tag))


class Burst(msgspec.Struct, frozen=True, kw_only=True):
    """One burst: its rate, what it stored and burned per job, and raw fsync on its server."""

    jobs_per_s: float
    writes_per_job: float
    cpu_ms_per_job: float
    raw_fsync_msgs_per_s: float = 0.0  # measured only when asked


async def bench_burst(
    settings: E2ESettings,
    round_: int,
    *,
    default_sync: bool = False,
    log_events: int = 0,
    raw: bool = False,
) -> Burst:
    """Jobs per second from the burst's first publish to its last completion, and its costs."""
    tag = f"b{round_}"
    async with farm(settings, tag, default_sync=default_sync, log_events=log_events) as f:
        stored_before, cpu_before = await _stored(f), _cpu_s(f.server_pid)
        js, subjects = f.nc.jetstream(), f.store.subjects
        start = time.perf_counter()
        for first in range(0, settings.jobs, PUBLISH_WINDOW):
            last = min(settings.jobs, first + PUBLISH_WINDOW)
            commands = [_submit(f"{tag}-{i:07d}", i, tag) for i in range(first, last)]
            answers = [submit(f.nc, js, subjects, command) for command in commands]
            try:
                await asyncio.wait_for(asyncio.gather(*answers), ACK_TIMEOUT_S)
            except TimeoutError as exc:
                why = f"submits {first} to {last} not answered in {ACK_TIMEOUT_S:g} s"
                raise FfrtmpError(why) from exc
        timeout_s = 120 + settings.jobs / 100
        await until(lambda: f.completed >= settings.jobs, timeout_s, "the burst's completions")
        elapsed = time.perf_counter() - start
        cpu_s = _cpu_s(f.server_pid) - cpu_before
        writes = await _stored(f) - stored_before
        failed = sum(a.stats.failed + a.stats.refused + a.stats.dropped for a in f.agents)
        raw_rate = await _raw_fsync(f.nc, writes) if raw else 0.0
    if failed or f.completed != settings.jobs:
        raise FfrtmpError(f"the burst went wrong: {f.completed} completed, {failed} not")
    return Burst(
        jobs_per_s=rate(settings.jobs, elapsed),
        writes_per_job=writes / settings.jobs,
        cpu_ms_per_job=cpu_s * 1000 / settings.jobs,
        raw_fsync_msgs_per_s=raw_rate,
    )


async def _stored(f: _Farm) -> int:
    """Messages ever stored in the events, commands and work streams (acked work included)."""
    js, subjects = f.nc.jetstream(), f.store.subjects
    streams = (subjects.events_stream, subjects.commands_stream, subjects.work_stream)
    return sum([(await js.stream_info(name)).state.last_seq for name in streams])


def _cpu_s(server_pid: int) -> float:
    """CPU seconds so far of this process (scheduler, agents, submitter) and the server."""
    server = psutil.Process(server_pid).cpu_times()
    return float(time.process_time() + server.user + server.system)


async def _raw_fsync(nc: NatsClient, count: int) -> float:
    """nats-py's ``publish_async`` of ``count`` small messages to a file stream; per second."""
    js = nc.jetstream()
    await js.add_stream(name="BENCH_RAW_FSYNC", subjects=["bench-raw.>"])
    payload = b"x" * 200
    start = time.perf_counter()
    for first in range(0, count, PUBLISH_WINDOW):
        window = range(first, min(count, first + PUBLISH_WINDOW))
        acks = [await js.publish_async(f"bench-raw.{i % 64}", payload) for i in window]
        await asyncio.wait_for(asyncio.gather(*acks), ACK_TIMEOUT_S)
    return rate(count, time.perf_counter() - start)


async def bench_steady(settings: E2ESettings, round_: int) -> list[float]:
    """Milliseconds from each counted submission's publish to its job's ``JobStarted``."""
    tag = f"s{round_}"
    started: dict[str, float] = {}
    subjects = Subjects("bench")

    async def on_event(msg: Msg) -> None:
        parsed = subjects.parse_job_subject(msg.subject)
        if parsed is None or parsed[1] == wire.SCHEDULER_WRITER:
            return
        at = time.perf_counter()
        if isinstance(read_event(msg.subject, msg.data), JobStarted):
            started.setdefault(parsed[0], at)

    async with farm(settings, tag) as f:
        sub = await f.nc.subscribe(subjects.all_events, cb=on_event)
        await f.nc.flush()
        sent = await submit_steadily(
            f.nc,
            subjects,
            rate=settings.rate,
            seconds=settings.seconds,
            warmup_s=settings.warmup_s,
            tag=tag,
        )
        await until(lambda: sent.keys() <= started.keys(), 30.0, "the last starts")
        await sub.unsubscribe()
    return [(started[job] - at) * 1000 for job, at in sent.items()]


async def bench_e2e(settings: E2ESettings) -> E2EReport:
    """Burst rounds (empty log, default fsync, full log), then steady rounds; medians of each."""
    bursts: list[Burst] = []
    unsynced: list[float] = []
    full: list[float] = []
    for r in range(settings.rounds):
        bursts.append(await bench_burst(settings, r, raw=True))
        unsynced.append((await bench_burst(settings, r, default_sync=True)).jobs_per_s)
        if settings.full_log_events:
            full_burst = await bench_burst(settings, r, log_events=settings.full_log_events)
            full.append(full_burst.jobs_per_s)
    # The bursts leave the disk writing back (and deleting) millions of events; a steady round
    # run into that measured its fsyncs queueing behind it (p99 300 ms in the first round,
    # 3 ms in the third). Each phase starts from a quiet disk, as a farm's steady state does.
    await asyncio.to_thread(os.sync)
    steady = [await bench_steady(settings, r) for r in range(settings.rounds)]
    rates = [b.jobs_per_s for b in bursts]
    limit = [b.jobs_per_s * b.writes_per_job / b.raw_fsync_msgs_per_s for b in bursts]
    rounds = {
        "jobs_per_s": [round(b, 1) for b in rates],
        "jobs_per_s_default_fsync": [round(b, 1) for b in unsynced],
        "jobs_per_s_full_log": [round(b, 1) for b in full],
        "writes_per_job": [round(b.writes_per_job, 2) for b in bursts],
        "raw_fsync_msgs_per_s": [round(b.raw_fsync_msgs_per_s, 1) for b in bursts],
        "limit_ratio": [round(x, 3) for x in limit],
        "cpu_ms_per_job": [round(b.cpu_ms_per_job, 3) for b in bursts],
        "p50_submit_to_start_ms": [round(percentile(s, 0.50), 3) for s in steady],
        "p99_submit_to_start_ms": [round(percentile(s, 0.99), 3) for s in steady],
    }
    jobs_per_s = median(rates)
    return E2EReport(
        jobs_per_s=round(jobs_per_s, 1),
        jobs_per_s_default_fsync=round(median(unsynced), 1),
        jobs_per_s_full_log=round(median(full), 1) if full else 0.0,
        flat_ratio=round(median(full) / jobs_per_s, 3) if full else 0.0,
        writes_per_job=round(median([b.writes_per_job for b in bursts]), 2),
        raw_fsync_msgs_per_s=round(median([b.raw_fsync_msgs_per_s for b in bursts]), 1),
        limit_ratio=round(median(limit), 3),
        cpu_ms_per_job=round(median([b.cpu_ms_per_job for b in bursts]), 3),
        p50_submit_to_start_ms=round(median(rounds["p50_submit_to_start_ms"]), 2),
        p99_submit_to_start_ms=round(median(rounds["p99_submit_to_start_ms"]), 2),
        max_submit_to_start_ms=round(max(max(s) for s in steady), 2),
        submitted=sum(len(s) for s in steady),
        targets=TARGETS,
        rounds=rounds,
        settings=settings,
        machine=machine(),
    )
