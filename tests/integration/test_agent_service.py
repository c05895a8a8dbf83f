"""The agent service on a real nats-server with the real scheduler; the work is scripted."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import psutil
import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError

from agent.attempt import AttemptSettings
from agent.ffmpeg_engine import EngineSettings, FfmpegEngine
from agent.logs import LogNotFound, read_log
from agent.scripted import Behaviour, Outcome, Plan, ScriptedEngine, ScriptedExecution
from agent.service import AgentService, AgentSettings, default_slots
from agent.tally import Journal
from agent.telemetry import Hardware
from events.agent_events import AgentDeregistered, AgentRegistered, Capabilities, GpuInfo
from events.base import AgentEventBase
from events.codec import decode_heartbeat
from events.commands import CancelJob, PauseJob, ResumeJob
from events.enums import FailureReason, JobStatus
from events.job_events import JobCompleted, JobFailed, JobProgressed, JobRetrying
from events.streams import events_stream
from events.subjects import MSG_ID
from events.work import GpuTelemetry, Heartbeat
from tests.farm import CPU, Farm, scheduler, wait_until
from tests.gstreamer import media_children

pytestmark = pytest.mark.anyio
S = JobStatus
QUICK = Behaviour(run_s=0.05, milestones=())
HANG = Behaviour(outcome=Outcome.HANG)
PATTERN = "testsrc2=size=160x90:rate=30"


@dataclass
class Agent:
    """A started agent service and the scripted engine behind it."""

    service: AgentService
    engine: ScriptedEngine
    journal: Journal

    def execution(self, job: str, attempt: int = 1) -> ScriptedExecution:
        return self.engine.executions[job, attempt]


Factory = Callable[..., Awaitable[Agent]]


@pytest.fixture
async def agents(farm: Farm) -> AsyncIterator[Factory]:
    """Start agent services; whatever a test leaves running is stopped as a crash at the end."""
    started: list[AgentService] = []

    async def make(
        name: str,
        behaviour: Behaviour | Plan = QUICK,
        slots: int = 1,
        heartbeat_s: float = 0.2,
        **settings: Any,
    ) -> Agent:
        engine, journal = ScriptedEngine(behaviour), Journal()
        attempt = AttemptSettings(
            poll_s=0.02,
            budget_grace_s=settings.pop("grace_s", 10.0),
            report_outage_s=settings.pop("report_outage_s", 120.0),
        )
        config = AgentSettings(slots=slots, heartbeat_s=heartbeat_s, attempt=attempt, **settings)
        service = AgentService(
            farm.store.nc, farm.store, farm.subjects, name, CPU, engine, config, journal=journal
        )
        await service.start()
        started.append(service)
        return Agent(service, engine, journal)

    yield make
    for service in started:
        with contextlib.suppress(Exception):
            await service.stop(deregister=False)


async def agent_events(farm: Farm, agent: str) -> list[AgentEventBase]:
    """The agent's lifecycle events in the log."""
    return [
        e
        async for _, e in farm.store.replay()
        if isinstance(e, AgentEventBase) and e.agent == agent
    ]


async def last_beat(farm: Farm, agent: str) -> Heartbeat | None:
    """The heartbeat stream's last message for ``agent``."""
    subjects = farm.subjects
    try:
        msg = await farm.js.get_last_msg(subjects.heartbeat_stream, subjects.heartbeat(agent))
    except NotFoundError:
        return None
    assert msg.data is not None
    return decode_heartbeat(msg.data)


async def beat_shows(farm: Farm, agent: str, check: Callable[[Heartbeat], bool]) -> None:
    """Wait until the agent's last heartbeat passes ``check``."""

    async def shows() -> bool:
        beat = await last_beat(farm, agent)
        return beat is not None and check(beat)

    await wait_until(shows, f"a heartbeat of {agent} to show it")


def test_default_slots_come_from_cores_and_gpus() -> None:
    """One slot per four cores (at least one), plus each GPU's NVENC sessions up to three."""
    gpu = GpuInfo(index=0, name="L4", memory_bytes=1 << 34, nvenc_sessions=8)
    small = GpuInfo(index=1, name="RTX 3060", memory_bytes=1 << 33, nvenc_sessions=2)
    assert default_slots(Capabilities(cpu_cores=2)) == 1
    assert default_slots(Capabilities(cpu_cores=16)) == 4
    assert default_slots(Capabilities(cpu_cores=16, gpus=(gpu, small))) == 4 + 3 + 2


async def test_registers_runs_with_milestones_keeps_the_log_and_deregisters(
    farm: Farm, agents: Factory
) -> None:
    """Registration carries capabilities and slots; milestones and the log tail are kept."""
    behaviour = Behaviour(run_s=0.2, milestones=(25.0, 50.0, 75.0), log=b"frame=1 fps=25\n")
    agent = await agents("a1", behaviour, slots=3)
    async with scheduler(farm.store):
        await farm.submit("j1")
        done = await farm.wait_status("j1", S.COMPLETED)
    assert done.agent == "a1"
    progressed = [e.percent for e in await farm.history("j1") if isinstance(e, JobProgressed)]
    assert progressed == [25.0, 50.0, 75.0]
    assert await read_log(farm.js, farm.subjects, "j1", 1) == b"frame=1 fps=25\n"
    with pytest.raises(LogNotFound):
        await read_log(farm.js, farm.subjects, "j1", 2)
    await agent.service.stop()
    events = await agent_events(farm, "a1")
    assert [type(e) for e in events] == [AgentRegistered, AgentDeregistered]
    registered = events[0]
    assert isinstance(registered, AgentRegistered)
    assert (registered.slots, registered.capabilities) == (3, CPU)
    assert agent.service.stats.completed == 1


async def test_milestones_passed_in_one_reading_are_each_reported(
    farm: Farm, agents: Factory
) -> None:
    """Progress that jumps from 0 % to 80 % at once still writes 25, 50 and 75, in order."""
    await agents("a1", Behaviour(run_s=0.3, milestones=(80.0,)))
    async with scheduler(farm.store):
        await farm.submit("jump")
        await farm.wait_status("jump", S.COMPLETED)
    progressed = [e.percent for e in await farm.history("jump") if isinstance(e, JobProgressed)]
    assert progressed == [25.0, 50.0, 75.0]


async def test_no_more_attempts_run_than_slots(farm: Farm, agents: Factory) -> None:
    """With two slots, two jobs run and the third waits until one of them ends."""
    agent = await agents("a1", HANG, slots=2)
    async with scheduler(farm.store):
        for job in ("j1", "j2", "j3"):
            await farm.submit(job)
        await beat_shows(farm, "a1", lambda b: b.free_slots == 0 and len(b.running) == 2)
        states = {job: (await farm.state(job)).status for job in ("j1", "j2", "j3")}
        assert sorted(states.values()) == [S.QUEUED, S.RUNNING, S.RUNNING]
        assert len(agent.service.running) == 2
        first = next(job for job, status in states.items() if status is S.RUNNING)
        waiting = next(job for job, status in states.items() if status is S.QUEUED)
        agent.execution(first).finish()
        await farm.wait_status(first, S.COMPLETED)
        await farm.wait_status(waiting, S.RUNNING)
    assert agent.journal.refused == []
    assert len(agent.journal.executions) == 3


async def test_a_zombie_agents_completion_is_refused(farm: Farm, agents: Factory) -> None:
    """A silent agent is lost; its job completes elsewhere; its late Complete appends nothing."""
    zombie = await agents("a1", HANG, heartbeat_s=3600.0)  # one heartbeat, then silence
    async with scheduler(farm.store):
        await farm.submit("j")
        running = await farm.wait_status("j", S.RUNNING)
        assert running.agent == "a1"
        await agents("a2", QUICK)
        done = await farm.wait_status("j", S.COMPLETED)
        assert (done.agent, done.attempt) == ("a2", 2)
    before = await farm.history("j")
    zombie.execution("j").finish()

    async def dropped() -> bool:
        return zombie.journal.dropped == [("j", 1)]

    await wait_until(dropped, "the zombie to give its attempt up")
    assert await farm.history("j") == before
    completions = [e for e in before if isinstance(e, JobCompleted)]
    assert [(e.agent, e.attempt) for e in completions] == [("a2", 2)]
    assert zombie.service.stats.completed == 0


async def test_controls_reach_the_execution(farm: Farm, agents: Factory) -> None:
    """Pause, resume and cancel act on the execution; the log and heartbeats say what happened."""
    agent = await agents("a1", HANG)
    async with scheduler(farm.store):
        await farm.submit("j")
        await farm.wait_status("j", S.RUNNING)
        await farm.send(PauseJob(id="pause-1", job="j", at=1.0))
        await farm.wait_status("j", S.PAUSED)
        assert agent.execution("j").paused
        await beat_shows(farm, "a1", lambda b: [r.paused for r in b.running] == [True])
        await farm.send(ResumeJob(id="resume-1", job="j", at=2.0))
        await farm.wait_status("j", S.RUNNING)
        assert not agent.execution("j").paused
        await farm.send(CancelJob(id="cancel-1", job="j", at=3.0))
        canceled = await farm.wait_status("j", S.CANCELED)
    assert canceled.agent == "a1"
    assert [action for _, _, action in agent.journal.controls_seen] == ["pause", "resume", "cancel"]

    async def freed() -> bool:
        return agent.service.free_slots == 1

    await wait_until(freed, "the slot to free")
    assert agent.service.stats.canceled == 1


async def test_drain_finishes_what_it_can_and_hands_back_the_rest(
    farm: Farm, agents: Factory
) -> None:
    """On stop, a short job finishes in the grace period; a long one retries on another agent."""

    def plan(dispatch: Any) -> Behaviour:
        return Behaviour(run_s=0.3, milestones=()) if dispatch.job == "short" else HANG

    draining = await agents("a1", plan, slots=2, drain_grace_s=3.0)
    async with scheduler(farm.store):
        await farm.submit("short")
        await farm.submit("long")
        for job in ("short", "long"):
            assert (await farm.wait_status(job, S.RUNNING, S.COMPLETED)).agent == "a1"
        await draining.service.stop()
        await agents("a2", QUICK)
        done = await farm.wait_status("long", S.COMPLETED)
        assert done.agent == "a2"
    assert (await farm.state("short")).agent == "a1"
    assert (await farm.state("short")).status is S.COMPLETED
    handed_back = [e for e in await farm.history("long") if isinstance(e, JobRetrying)]
    assert [(e.agent, e.reason) for e in handed_back] == [("a1", FailureReason.RESOURCE_ERROR)]
    assert "shut down" in handed_back[0].message
    kinds = [type(e) for e in await agent_events(farm, "a1")]
    assert kinds == [AgentRegistered, AgentDeregistered]


async def test_malformed_work_is_dead_lettered_and_counted(farm: Farm, agents: Factory) -> None:
    """Junk on the work subject goes to the dead-letter subject; the next job still runs."""
    agent = await agents("a1", QUICK)
    dead: list[Msg] = []

    async def keep(msg: Msg) -> None:
        dead.append(msg)

    await farm.store.nc.subscribe(farm.subjects.dead_letter(agent.service.durable), cb=keep)
    await farm.js.publish(farm.subjects.work("a1"), b"\x00junk", headers={MSG_ID: "junk"})
    async with scheduler(farm.store):
        await farm.submit("j")
        await farm.wait_status("j", S.COMPLETED)

    async def set_aside() -> bool:
        return len(dead) == 1

    await wait_until(set_aside, "the junk on the dead-letter subject")
    assert dead[0].data == b"\x00junk"
    assert agent.service.stats.malformed == 1


async def test_heartbeats_carry_running_jobs_and_free_slots(farm: Farm, agents: Factory) -> None:
    """A running attempt shows in heartbeats with its progress; its end frees the slot."""
    agent = await agents("a1", Behaviour(run_s=0.1, milestones=(50.0,)), slots=2)
    await beat_shows(farm, "a1", lambda b: (b.slots, b.free_slots, b.running) == (2, 2, ()))
    agent.engine.plan = lambda _: Behaviour(outcome=Outcome.HANG, milestones=())
    async with scheduler(farm.store):
        await farm.submit("j")
        await farm.wait_status("j", S.RUNNING)
        await beat_shows(
            farm, "a1", lambda b: b.free_slots == 1 and [r.job for r in b.running] == ["j"]
        )
        agent.execution("j").finish()
        await farm.wait_status("j", S.COMPLETED)
    await beat_shows(farm, "a1", lambda b: (b.free_slots, b.running) == (2, ()))
    assert agent.service.stats.heartbeats >= 3


async def test_heartbeats_carry_hardware_readings_and_survive_a_failing_one(farm: Farm) -> None:
    """The telemetry's readings ride on the heartbeat; a reading that raises leaves them empty."""
    gpu = GpuTelemetry(index=0, utilization_percent=40.0, temperature_c=61.0, power_w=70.0)
    readings = [Hardware(cpu_percent=12.5, memory_total_bytes=1 << 30, power_w=95.0, gpus=(gpu,))]

    def read() -> Hardware:
        if not readings:
            raise OSError("sensor gone")
        return readings[0]

    settings = AgentSettings(heartbeat_s=0.05, keep_logs=False)
    service = AgentService(
        farm.store.nc, farm.store, farm.subjects, "hw", CPU, ScriptedEngine(), settings,
        telemetry=read,
    )  # fmt: skip
    await service.start()
    try:
        await beat_shows(farm, "hw", lambda b: (b.cpu_percent, b.gpus) == (12.5, (gpu,)))
        readings.clear()
        await beat_shows(
            farm, "hw", lambda b: (b.cpu_percent, b.gpus, b.power_w) == (None, (), None)
        )
    finally:
        await service.stop(deregister=False)


async def test_the_agent_times_out_an_attempt_over_budget_without_a_scheduler(
    farm: Farm, agents: Factory
) -> None:
    """With the scheduler gone, the agent's watchdog cancels an attempt over its budget."""
    agent = await agents("a1", HANG, grace_s=0.2)
    async with scheduler(farm.store):
        await farm.submit("slow", timeout_s=0.5, max_retries=0)
        await farm.wait_status("slow", S.RUNNING)
    failed = await farm.wait_status("slow", S.FAILED)
    assert (failed.agent, failed.reason) == ("a1", FailureReason.TIMEOUT)
    last = (await farm.history("slow"))[-1]
    assert isinstance(last, JobFailed)
    assert "budget" in last.message
    assert agent.service.free_slots == 1


# --- with the real FFmpeg -------------------------------------------------------------------


@pytest.fixture
async def ffmpeg_agent(farm: Farm, tmp_path: Path) -> AsyncIterator[AgentService]:
    """An agent running the bundled FFmpeg, one slot, its files under the test's directory."""
    engine = FfmpegEngine(
        EngineSettings(ffmpeg=imageio_ffmpeg.get_ffmpeg_exe(), cores=2, work_dir=str(tmp_path))
    )
    settings = AgentSettings(heartbeat_s=0.2, attempt=AttemptSettings(poll_s=0.05))
    service = AgentService(farm.store.nc, farm.store, farm.subjects, "ff", CPU, engine, settings)
    await service.start()
    yield service
    await service.stop(deregister=False)


def ffmpeg_children() -> list[psutil.Process]:
    """The FFmpeg processes this test process started."""
    return media_children("ffmpeg")


@pytest.mark.usefixtures("ffmpeg_agent")
async def test_ffmpeg_job_completes_with_results_and_its_log(farm: Farm, tmp_path: Path) -> None:
    """A 1 s pattern encodes to a file; the results are plausible and the log tail is kept."""
    output = tmp_path / "out.mp4"
    async with scheduler(farm.store):
        await farm.submit(
            "enc", scenario="480p-h264", input=PATTERN, duration_s=1.0, output=str(output)
        )
        await farm.wait_status("enc", S.COMPLETED)
    completed = (await farm.history("enc"))[-1]
    assert isinstance(completed, JobCompleted)
    assert completed.agent == "ff"
    results = completed.results
    assert results.frames == 30
    assert results.output_bytes == output.stat().st_size > 0
    assert results.wall_s > 0
    assert results.cpu_s is not None
    assert results.cpu_s > 0
    log = await read_log(farm.js, farm.subjects, "enc", 1)
    assert b"libx264" in log


@pytest.mark.usefixtures("ffmpeg_agent")
async def test_ffmpeg_bad_input_is_a_user_error_without_retry(farm: Farm, tmp_path: Path) -> None:
    """A missing input file fails the job as user_error at once: no retry."""
    missing = tmp_path / "missing.mp4"
    async with scheduler(farm.store):
        await farm.submit("bad", scenario="480p-h264", input=str(missing), max_retries=3)
        failed = await farm.wait_status("bad", S.FAILED)
    assert (failed.reason, failed.attempt, failed.agent) == (FailureReason.USER_ERROR, 1, "ff")
    assert str(missing) in failed.message
    assert "JobRetrying" not in await farm.kinds("bad")


@pytest.mark.usefixtures("ffmpeg_agent")
async def test_ffmpeg_pause_resume_cancel_act_on_the_process(farm: Farm) -> None:
    """Pause stops FFmpeg (SIGSTOP), resume continues it, cancel ends it and the job."""
    async with scheduler(farm.store):
        await farm.submit("long", scenario="480p-h264", input=PATTERN, duration_s=3600.0)
        await farm.wait_status("long", S.RUNNING)

        async def one_ffmpeg() -> bool:
            return len(ffmpeg_children()) == 1

        await wait_until(one_ffmpeg, "FFmpeg to run")
        (process,) = ffmpeg_children()
        await farm.send(PauseJob(id="pause-1", job="long", at=1.0))
        await farm.wait_status("long", S.PAUSED)
        assert process.status() == psutil.STATUS_STOPPED
        await farm.send(ResumeJob(id="resume-1", job="long", at=2.0))
        await farm.wait_status("long", S.RUNNING)
        assert process.status() != psutil.STATUS_STOPPED
        await farm.send(CancelJob(id="cancel-1", job="long", at=3.0))
        canceled = await farm.wait_status("long", S.CANCELED)
    assert canceled.agent == "ff"
    assert not process.is_running()
    assert ffmpeg_children() == []


async def test_a_completion_that_meets_an_outage_is_stored_once_the_log_is_back(
    farm: Farm, agents: Factory
) -> None:
    """The encode ends while the events stream takes no appends: its Complete is sent again.

    Detaching the stream's subjects looks to a writer like a cluster electing a stream leader:
    the append finds no stream. The finished attempt is not abandoned (its slot busy, the job
    left to time out and run again): once the stream is back, attempt 1 completes, once.
    """
    agent = await agents("a1", HANG)
    config = events_stream(farm.subjects)
    detached = dataclasses.replace(config, subjects=[f"{farm.subjects.prefix}.detached.>"])
    async with scheduler(farm.store):
        await farm.submit("j")
        await farm.wait_status("j", S.RUNNING)
        await farm.js.update_stream(detached)
        try:
            agent.execution("j").finish()

            async def held() -> bool:
                return agent.service.stats.outage_retries >= 3

            await wait_until(held, "the agent to send its Complete again through the outage")
        finally:
            await farm.js.update_stream(config)
        done = await farm.wait_status("j", S.COMPLETED)
    assert (done.agent, done.attempt) == ("a1", 1)
    assert (agent.service.stats.completed, agent.service.stats.errors) == (1, 0)
    completions = [e for e in await farm.history("j") if isinstance(e, JobCompleted)]
    assert len(completions) == 1


async def test_a_report_waits_for_the_store_no_longer_than_the_budget_allows(
    farm: Farm, agents: Factory
) -> None:
    """An outage that outlasts the attempt's budget: the agent gives the report up and its slot.

    By then the scheduler times the attempt out anyway; holding the slot longer would only
    keep it from the retry.
    """
    agent = await agents("a1", HANG, grace_s=0.2, report_outage_s=0.5)
    config = events_stream(farm.subjects)
    detached = dataclasses.replace(config, subjects=[f"{farm.subjects.prefix}.detached.>"])
    async with scheduler(farm.store):
        await farm.submit("j", timeout_s=1.0)
        await farm.wait_status("j", S.RUNNING)
        await farm.js.update_stream(detached)
        try:
            agent.execution("j").finish()

            async def given_up() -> bool:
                return agent.service.stats.errors == 1 and not agent.service.running

            await wait_until(given_up, "the agent to give the report up")
        finally:
            await farm.js.update_stream(config)
    assert agent.service.stats.outage_retries >= 1
    assert agent.service.stats.completed == 0
