"""``ffrtmp bench cluster``: how soon a 3-node cluster completes jobs again after a leader dies.

Three ``nats-server`` nodes on loopback (``ffrtmp.natscluster``), every stream R3, a leading
scheduler and simulated agents (the real agent loop with scripted work) in this process, with
the processes' default timeouts, and jobs submitted steadily. Each round waits until every
replica is current and jobs are completing, SIGKILLs the node leading the events stream, and
measures from the kill to the first job completion the log acknowledges after it (the target
is 10 s), and to the completion of the first job submitted after the kill (the whole path
working again: command, placement, the agent's reports; it includes that job's scripted work
and the gap between submissions); then restarts the node. Every submitted job must complete,
and no attempt may be abandoned by its agent. ``RELIABILITY.md`` records the figures and this
command.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Final

import msgspec
import nats
from nats.aio.client import Client as NatsClient

from agent.attempt import AttemptSettings
from agent.scripted import Behaviour, ScriptedEngine
from agent.service import AgentService, AgentSettings
from events.aio import background
from events.base import JobEventBase
from events.enums import JobStatus
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job import fold
from events.natserrors import FAILURES
from events.streams import ensure_streams
from events.subjects import Subjects
from ffrtmp.bench.chaos import Submitter
from ffrtmp.bench.chaosagent import CAPABILITIES
from ffrtmp.bench.harness import until
from ffrtmp.natscluster import ClusterSettings, NatsCluster
from ffrtmp.scheduler.service import Scheduler, ServiceSettings

SUBJECTS: Final = Subjects("bench")


class ClusterBenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What the cluster bench runs."""

    kills: int = 3
    rate: float = 4.0  # jobs submitted per second
    agents: int = 2
    slots: int = 4
    run_s: float = 0.5  # each job's scripted work
    timeout_s: float = 120.0  # longest wait for any one condition


class Recovery(msgspec.Struct, frozen=True, kw_only=True):
    """One kill: which node led the events stream, and how long until a job completed again."""

    leader: str
    next_completion_s: float
    new_job_completed_s: float


class ClusterReport(msgspec.Struct, frozen=True, kw_only=True):
    """Every kill's recovery, and whether every job still completed."""

    kills: list[Recovery]
    median_s: float
    max_s: float
    new_job_median_s: float
    new_job_max_s: float
    jobs: int
    completed: int
    abandoned: int  # attempts an agent gave up (a report it could not store)


async def bench_cluster(settings: ClusterBenchSettings) -> ClusterReport:
    """Run the farm on a fresh cluster, kill the events stream's leader ``kills`` times."""
    with tempfile.TemporaryDirectory(prefix="ffrtmp-cluster-") as tmp:
        async with (
            NatsCluster(ClusterSettings(root=tmp)) as cluster,
            _farm(cluster, settings) as (store, agents),
        ):
            submitter = Submitter(store, settings.rate)
            async with background(submitter.run(), "submitter"):
                kills = [await _kill_once(cluster, store, agents, submitter, settings)]
                for _ in range(settings.kills - 1):  # one after another, never at once
                    kills += [await _kill_once(cluster, store, agents, submitter, settings)]
                jobs = len(submitter.jobs)
            await until(lambda: _completed(agents) >= jobs, settings.timeout_s, "every job")
            figures = [k.next_completion_s for k in kills]
            whole = [k.new_job_completed_s for k in kills]
            return ClusterReport(
                kills=kills,
                median_s=statistics.median(figures),
                max_s=max(figures),
                new_job_median_s=statistics.median(whole),
                new_job_max_s=max(whole),
                jobs=jobs,
                completed=_completed(agents),
                abandoned=sum(a.stats.errors for a in agents),
            )


@contextlib.asynccontextmanager
async def _farm(
    cluster: NatsCluster, settings: ClusterBenchSettings
) -> AsyncIterator[tuple[JetStreamEventStore, list[AgentService]]]:
    """R3 streams, a leading scheduler and started agents on the cluster; all stopped after."""
    admin = await nats.connect(cluster.urls)
    await ensure_streams(admin, SUBJECTS, replicas=3)
    await admin.close()
    store = await JetStreamEventStore.connect(cluster.url, SUBJECTS)
    work = Behaviour(run_s=settings.run_s, milestones=())
    agent_settings = AgentSettings(
        slots=settings.slots, keep_logs=False, attempt=AttemptSettings(poll_s=0.05)
    )
    agents = [
        AgentService(
            store.nc, store, SUBJECTS, f"c{a}", CAPABILITIES, ScriptedEngine(work), agent_settings
        )
        for a in range(settings.agents)
    ]
    scheduler = Scheduler(store, ServiceSettings(), name="bench-cluster")
    try:
        for agent in agents:
            await agent.start()
        async with background(scheduler.run(), scheduler.name):
            await scheduler.leading.wait()
            yield store, agents
    finally:
        for agent in agents:
            with contextlib.suppress(Exception):
                await agent.stop(deregister=False)
        with contextlib.suppress(Exception):
            await store.close()


async def _kill_once(
    cluster: NatsCluster,
    store: JetStreamEventStore,
    agents: list[AgentService],
    submitter: Submitter,
    settings: ClusterBenchSettings,
) -> Recovery:
    """Kill the events stream's leader once jobs complete; time the next completion."""
    admin = await nats.connect(cluster.urls)
    try:
        deadline = time.perf_counter() + settings.timeout_s
        while not await _all_current(admin):
            if time.perf_counter() > deadline:
                raise FfrtmpError("the cluster's replicas never all became current")
            await asyncio.sleep(0.2)  # stream info is not free: ask gently
        before = _completed(agents)
        await until(lambda: _completed(agents) > before, settings.timeout_s, "a completion")
        leader = await _leader(admin, store.subjects.events_stream)
    finally:
        await admin.close()
    index = int(leader.removeprefix("n")) - 1
    cluster.kill(index)
    killed, before, first_new = time.perf_counter(), _completed(agents), len(submitter.jobs) + 1
    await until(lambda: _completed(agents) > before, settings.timeout_s, "the next completion")
    next_completion = time.perf_counter() - killed
    await _new_job_completed(store, submitter, first_new, killed + settings.timeout_s)
    return_s = time.perf_counter() - killed
    await cluster.restart(index)
    return Recovery(
        leader=leader,
        next_completion_s=round(next_completion, 2),
        new_job_completed_s=round(return_s, 2),
    )


async def _new_job_completed(
    store: JetStreamEventStore, submitter: Submitter, first: int, deadline: float
) -> None:
    """Wait until a job submitted after the kill (index ``first`` on) has completed."""
    while True:
        for job in submitter.jobs[first:]:
            with contextlib.suppress(FfrtmpError):  # a read during the election: ask again
                loaded = await store.load(job)
                events = [e for _, e in loaded.events if isinstance(e, JobEventBase)]
                if fold(job, events).status is JobStatus.COMPLETED:
                    return
        if time.perf_counter() > deadline:
            raise FfrtmpError("no job submitted after the kill completed")
        await asyncio.sleep(0.05)  # a poll interval of the measurement


def _completed(agents: list[AgentService]) -> int:
    return sum(agent.stats.completed for agent in agents)


async def _leader(nc: NatsClient, stream: str) -> str:
    info = await nc.jetstream().stream_info(stream)
    if info.cluster is None or not info.cluster.leader:
        raise FfrtmpError(f"stream {stream} has no leader")
    return str(info.cluster.leader)


async def _all_current(nc: NatsClient) -> bool:
    """Whether every stream has a leader and two current, online replicas."""
    for stream in (SUBJECTS.events_stream, SUBJECTS.commands_stream):
        try:
            cluster = (await nc.jetstream().stream_info(stream)).cluster
        except FAILURES:  # no answer while a leader is elected: not current yet
            return False
        replicas = [] if cluster is None else cluster.replicas or []
        if cluster is None or not cluster.leader or len(replicas) != 2:
            return False
        if not all(peer.current and not peer.offline for peer in replicas):
            return False
    return True
