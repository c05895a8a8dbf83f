"""``ffrtmp bench overhead``: the same real encodes run directly, then through ffrtmp.

The set is ``jobs`` encodes of the ``scenario`` from a lavfi test pattern (``duration_s`` of
video each, output discarded). Directly: the exact command line the agent builds for each job
(``agent.command.build`` for this machine), at the agent's CPU priority, ``parallel`` at a
time, timed from the first start to the last exit. Through ffrtmp: an embedded nats-server
(fsync on every write), a leading scheduler in this process and one agent as its own process
(``python -m agent run`` with ``parallel`` slots, started before the clock), timed from the
first ``SubmitJob`` to the last ``JobCompleted``. ``ratio`` is direct wall time over ffrtmp's:
1.0 means orchestration costs nothing. The agent process's own CPU time (FFmpeg excluded) over
the summed running time of its jobs is its CPU use per running job. Rounds alternate which
side goes first; figures are medians.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Final

import msgspec
import nats
import psutil
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from agent.command import Machine, build
from agent.ffmpeg_binary import find_ffmpeg
from agent.ffmpeg_engine import DEFAULT_NICE
from agent.hardware import host
from events.admit import read_event
from events.agent_events import AgentRegistered
from events.aio import background
from events.command_message import command_message
from events.commands import SubmitJob
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job_events import JobCompleted, JobFailed, JobRetrying
from events.scenarios import scenario
from events.spec import JobSpec
from events.subjects import Subjects
from ffrtmp.bench.harness import Machine as MachineInfo
from ffrtmp.bench.harness import embedded_server, machine, until
from ffrtmp.bench.stats import median, ratio, round_order
from ffrtmp.scheduler.service import Scheduler, ServiceSettings

TARGET_RATIO: Final = 0.95
AGENT_ID: Final = "overhead"


class OverheadSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The encodes and how they run; the defaults are the issue's."""

    jobs: int = 24
    scenario: str = "720p-h264"
    duration_s: float = 3.0
    parallel: int = 2
    rounds: int = 3


class OverheadReport(msgspec.Struct, frozen=True, kw_only=True):
    """Medians over the rounds, each round, the machine."""

    benchmark: str = "overhead"
    direct_wall_s: float
    ffrtmp_wall_s: float
    ratio: float
    target: float = TARGET_RATIO
    agent_cpu_percent_per_running_job: float  # of one core
    agent_cpu_s_per_job: float
    rounds: dict[str, list[float]]
    settings: OverheadSettings
    argv: list[str]  # the first job's command line, as both sides ran it
    machine: MachineInfo


class _Through(msgspec.Struct, frozen=True, kw_only=True):
    wall_s: float
    agent_cpu_s: float
    jobs_wall_s: float  # the jobs' own wall times, summed


def spec(settings: OverheadSettings) -> JobSpec:
    """One job of the set: the scenario from its test pattern, output discarded."""
    return JobSpec(
        scenario=settings.scenario, input="testsrc2", duration_s=settings.duration_s, max_retries=0
    )


def argv(settings: OverheadSettings, ffmpeg: str) -> list[str]:
    """The command line the agent builds for a job of the set on this machine."""
    job = spec(settings)
    plan = build(ffmpeg, job, scenario(job.scenario), Machine(cores=host().cpu_cores))
    return list(plan.argv)


async def run_direct(settings: OverheadSettings, command: list[str]) -> float:
    """Seconds to run the set as plain processes, ``parallel`` at a time, at the agent's nice."""
    gate = asyncio.Semaphore(settings.parallel)

    async def one() -> None:
        async with gate:
            process = await asyncio.create_subprocess_exec(
                *command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=lambda: os.nice(DEFAULT_NICE),
            )
            if await process.wait() != 0:
                raise FfrtmpError(f"a direct encode failed: {' '.join(command)}")

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(settings.jobs)))
    return time.perf_counter() - start


@contextlib.asynccontextmanager
async def agent_process(
    url: str, subjects: Subjects, slots: int, ffmpeg: str
) -> AsyncIterator[int]:
    """``python -m agent run`` on the server; yields its pid once it has registered."""
    command = [sys.executable, "-m", "agent", "run", "--nats", url, "--prefix", subjects.prefix]
    command += ["--id", AGENT_ID, "--slots", str(slots), "--health-port", "0", "--ffmpeg", ffmpeg]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield process.pid
    finally:
        if process.returncode is None:
            process.terminate()
        _, err = await process.communicate()
        if process.returncode != 0:
            tail = err.decode(errors="replace")[-500:]
            raise FfrtmpError(f"the agent exited {process.returncode}: {tail}")


async def run_through(settings: OverheadSettings, ffmpeg: str, tag: str) -> _Through:
    """Seconds from the first submission to the last completion, and the agent's CPU."""
    subjects = Subjects("bench")
    walls: list[float] = []
    failures: list[str] = []

    async def on_event(msg: Msg) -> None:
        event = read_event(msg.subject, msg.data)
        if isinstance(event, JobCompleted):
            walls.append(event.results.wall_s)
        elif isinstance(event, JobFailed | JobRetrying):
            failures.append(event.message)

    async with embedded_server() as server:
        store = await JetStreamEventStore.connect(server.url, subjects, ensure=True)
        nc = await nats.connect(server.url)
        try:
            scheduler = Scheduler(store, ServiceSettings(use_lease=False), name="bench-overhead")
            async with (
                background(scheduler.run(), scheduler.name),
                agent_process(server.url, subjects, settings.parallel, ffmpeg) as pid,
            ):
                await scheduler.leading.wait()
                await _registered(store)
                await nc.subscribe(subjects.all_events, cb=on_event)
                agent = psutil.Process(pid)
                cpu_before, start = _cpu_s(agent), time.perf_counter()
                await _submit(nc, subjects, settings, tag)
                timeout_s = 60 + 20 * settings.jobs * settings.duration_s
                await until(lambda: len(walls) + len(failures) >= settings.jobs, timeout_s, "jobs")
                wall_s, agent_cpu_s = time.perf_counter() - start, _cpu_s(agent) - cpu_before
        finally:
            await nc.close()
            await store.close()
    if failures:
        raise FfrtmpError(f"{len(failures)} jobs failed through ffrtmp, first: {failures[0]}")
    return _Through(wall_s=wall_s, agent_cpu_s=agent_cpu_s, jobs_wall_s=sum(walls))


def _cpu_s(process: psutil.Process) -> float:
    """The process's own CPU seconds (its children's not counted)."""
    times = process.cpu_times()
    return float(times.user + times.system)


async def _registered(store: JetStreamEventStore) -> None:
    """Wait until the agent's registration is in the log."""
    deadline = time.perf_counter() + 60.0
    while True:
        async for _, event in store.replay():
            if isinstance(event, AgentRegistered) and event.agent == AGENT_ID:
                return
        if time.perf_counter() > deadline:
            raise FfrtmpError("the agent did not register within 60 s")
        await asyncio.sleep(0.1)


async def _submit(nc: NatsClient, subjects: Subjects, settings: OverheadSettings, tag: str) -> None:
    """The set's ``SubmitJob`` commands, acknowledged by the commands stream."""
    js, job_spec = nc.jetstream(), spec(settings)
    for i in range(settings.jobs):
        job = f"{tag}-{i:03d}"
        command = SubmitJob(id=f"cmd-{job}", job=job, at=time.time(), spec=job_spec)
        message = command_message(subjects, command)
        await js.publish(message.subject, message.payload, headers=message.headers)


async def bench_overhead(settings: OverheadSettings) -> OverheadReport:
    """Rounds of both sides, alternating which goes first; medians and their ratio."""
    ffmpeg = str(find_ffmpeg())
    command = argv(settings, ffmpeg)
    direct: list[float] = []
    through: list[_Through] = []
    for index in range(settings.rounds):
        for side in round_order(index, ["direct", "ffrtmp"]):
            if side == "direct":
                direct.append(await run_direct(settings, command))
            else:
                through.append(await run_through(settings, ffmpeg, f"r{index}"))
    walls = [t.wall_s for t in through]
    per_job = [100 * t.agent_cpu_s / t.jobs_wall_s for t in through if t.jobs_wall_s > 0]
    return OverheadReport(
        direct_wall_s=round(median(direct), 3),
        ffrtmp_wall_s=round(median(walls), 3),
        ratio=round(ratio(median(direct), median(walls)), 3),
        agent_cpu_percent_per_running_job=round(median(per_job), 2),
        agent_cpu_s_per_job=round(median([t.agent_cpu_s / settings.jobs for t in through]), 4),
        rounds={
            "direct_wall_s": [round(d, 3) for d in direct],
            "ffrtmp_wall_s": [round(w, 3) for w in walls],
            "agent_cpu_s": [round(t.agent_cpu_s, 3) for t in through],
        },
        settings=settings,
        argv=command,
        machine=machine(),
    )
