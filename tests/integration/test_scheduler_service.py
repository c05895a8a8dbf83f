"""The scheduler service against a real nats-server with simulated agents on the real wire."""

from __future__ import annotations

import time

import pytest

from agent.report import JobWriter
from events.commands import CancelJob, Complete, PauseJob, RespondToJob, ResumeJob, SubmitJob
from events.enums import FailureReason, JobStatus, Priority, Queue
from events.job_events import CommandRefused, JobAssigned, JobResults, JobRetrying, JobStarted
from events.spec import JobSpec
from events.work import Dispatch
from tests.farm import GPU, Farm, scheduler, wait_until
from tests.simagent import Behaviour, Outcome

pytestmark = pytest.mark.anyio
S = JobStatus


async def test_jobs_are_placed_by_queue_then_priority(farm: Farm) -> None:
    """Commands sent while no scheduler runs wait durably; one slot serves them in order."""
    await farm.agent("a1", slots=1)
    jobs = [
        ("b-low", Queue.BATCH, Priority.LOW),
        ("d-med", Queue.DEFAULT, Priority.MEDIUM),
        ("l-low", Queue.LIVE, Priority.LOW),
        ("d-high", Queue.DEFAULT, Priority.HIGH),
        ("l-high", Queue.LIVE, Priority.HIGH),
    ]
    for job, queue, priority in jobs:
        await farm.submit(job, queue=queue, priority=priority)
    async with scheduler(farm.store):
        for job, _, _ in jobs:
            await farm.wait_status(job, S.COMPLETED)
    started = {}
    for job, _, _ in jobs:
        loaded = await farm.store.load(job)
        started[job] = next(seq for seq, e in loaded.events if isinstance(e, JobStarted))
    assert sorted(started, key=started.__getitem__) == [
        "l-high",
        "l-low",
        "d-high",
        "d-med",
        "b-low",
    ]


async def test_gpu_work_goes_to_gpu_agents_and_is_rejected_without_one(farm: Farm) -> None:
    """NVENC work lands on the GPU agent, CPU work on the CPU agent; no GPU: rejected."""
    await farm.agent("cpu-1", slots=2, behaviour=Behaviour(outcome=Outcome.HANG))
    async with scheduler(farm.store):
        await farm.submit("nv-early", scenario="1080p-h264-nvenc")
        rejected = await farm.wait_status("nv-early", S.REJECTED)
        assert "an NVIDIA GPU with h264_nvenc" in rejected.message
        assert rejected.reason is FailureReason.CAPABILITY_MISMATCH
        await farm.agent("gpu-1", GPU, slots=4, behaviour=Behaviour(outcome=Outcome.HANG))
        for job in ("nv-1", "nv-2", "nv-3"):
            await farm.submit(job, scenario="1080p-h264-nvenc")
        await farm.submit("cpu-job")
        for job in ("nv-1", "nv-2", "cpu-job"):
            await farm.wait_status(job, S.RUNNING)
        holders = {job: (await farm.state(job)).agent for job in ("nv-1", "nv-2", "cpu-job")}
        assert holders == {"nv-1": "gpu-1", "nv-2": "gpu-1", "cpu-job": "cpu-1"}
        # The GPU allows two NVENC sessions: the third waits although the agent has slots.
        assert (await farm.state("nv-3")).status is S.QUEUED


async def test_failures_retry_with_backoff_until_retries_run_out(farm: Farm) -> None:
    """Runtime errors retry (backoff from the policy) until max_retries, then the job fails."""
    fail = Behaviour(outcome=Outcome.FAIL, fail_reason=FailureReason.RUNTIME_ERROR)
    await farm.agent("a1", behaviour=fail)
    async with scheduler(farm.store):
        await farm.submit("j", max_retries=2)
        failed = await farm.wait_status("j", S.FAILED)
    assert failed.reason is FailureReason.RUNTIME_ERROR
    kinds = await farm.kinds("j")
    assert kinds.count("JobRetrying") == 2
    assert kinds.count("JobQueued") == 2
    assert kinds.count("JobAssigned") == 3
    assert kinds[-1] == "JobFailed"


async def test_user_errors_are_not_retried(farm: Farm) -> None:
    """A bad input fails the job at once: one attempt only."""
    await farm.agent(
        "a1", behaviour=Behaviour(outcome=Outcome.FAIL, fail_reason=FailureReason.USER_ERROR)
    )
    async with scheduler(farm.store):
        await farm.submit("bad-input", max_retries=3)
        await farm.wait_status("bad-input", S.FAILED)
    assert (await farm.kinds("bad-input")).count("JobAssigned") == 1


async def test_an_attempt_over_its_budget_times_out(farm: Farm) -> None:
    """A hanging attempt over its budget is timed out, retried once, then failed."""
    await farm.agent("a1", behaviour=Behaviour(outcome=Outcome.HANG))
    async with scheduler(farm.store):
        await farm.submit("slow", timeout_s=0.5, max_retries=1)
        failed = await farm.wait_status("slow", S.FAILED)
    assert failed.reason is FailureReason.TIMEOUT
    kinds = await farm.kinds("slow")
    assert kinds.count("JobTimedOut") == 2


async def test_a_lost_agents_job_runs_elsewhere_and_its_late_report_is_refused(
    farm: Farm,
) -> None:
    """A silent agent is lost; its job completes elsewhere; its late report appends nothing."""
    first = await farm.agent("a1", behaviour=Behaviour(outcome=Outcome.HANG))
    async with scheduler(farm.store):
        await farm.submit("j")
        running = await farm.wait_status("j", S.RUNNING)
        assert running.agent == "a1"
        await first.stop(deregister=False)  # a crash: no goodbye, no more heartbeats
        await farm.agent("a2")
        done = await farm.wait_status("j", S.COMPLETED)
    assert done.agent == "a2"
    kinds = await farm.kinds("j")
    assert "JobRetrying" in kinds
    history = await farm.history("j")
    assert [e.reason for e in history if isinstance(e, JobRetrying)] == [FailureReason.AGENT_LOST]
    # The zombie comes back and reports its old attempt complete: refused, nothing appended.
    assert running.spec is not None
    dispatch = Dispatch(job="j", attempt=1, spec=running.spec, budget_s=60, after_seq=0, at=0)
    zombie = JobWriter(farm.store, farm.subjects, "a1", dispatch)
    before = await farm.kinds("j")
    complete = Complete(agent="a1", attempt=1, results=JobResults(wall_s=1.0))
    assert await zombie.report(complete, time.time()) == []
    assert await farm.kinds("j") == before


async def test_cancel_pause_resume_in_each_state(farm: Farm) -> None:
    """Queued jobs pause/resume/cancel at once, running ones via the agent; late ones refused."""
    async with scheduler(farm.store):
        # Queued (no agent yet): pause, resume, cancel are immediate.
        await farm.submit("q")
        await farm.wait_status("q", S.QUEUED)
        await farm.send(PauseJob(id=farm.command_id(), job="q", at=time.time()))
        await farm.wait_status("q", S.PAUSED)
        await farm.send(ResumeJob(id=farm.command_id(), job="q", at=time.time()))
        await farm.wait_status("q", S.QUEUED)
        await farm.send(CancelJob(id=farm.command_id(), job="q", at=time.time()))
        await farm.wait_status("q", S.CANCELED)
        # Running: the agent is asked, and the log records what it did.
        agent = await farm.agent("a1", behaviour=Behaviour(outcome=Outcome.HANG))
        await farm.submit("r")
        await farm.wait_status("r", S.RUNNING)
        await farm.send(PauseJob(id=farm.command_id(), job="r", at=time.time()))
        paused = await farm.wait_status("r", S.PAUSED)
        assert paused.resume_to is S.RUNNING
        await farm.send(ResumeJob(id=farm.command_id(), job="r", at=time.time()))
        await farm.wait_status("r", S.RUNNING)
        await farm.send(CancelJob(id=farm.command_id(), job="r", at=time.time()))
        await farm.wait_status("r", S.CANCELED)
        kinds = await farm.kinds("r")
        assert kinds.count("JobControlRequested") == 3
        assert [c[2] for c in agent.controls_seen] == ["pause", "resume", "cancel"]
        # A command that cannot apply is refused with a reason, and nothing else changes.
        await farm.send(PauseJob(id="late-pause", job="r", at=time.time()))

        async def refused() -> bool:
            return any(isinstance(e, CommandRefused) for e in await farm.history("r"))

        await wait_until(refused, "the refusal")
        (refusal,) = [e for e in await farm.history("r") if isinstance(e, CommandRefused)]
        assert refusal.command_id == "late-pause"
        assert "canceled" in refusal.reason
        assert (await farm.state("r")).status is S.CANCELED


async def test_approval_gate(farm: Farm) -> None:
    """Pending jobs wait for the operator: approved runs, denied is canceled and never placed."""
    await farm.agent("a1")
    async with scheduler(farm.store):
        await farm.submit("ask", approval_required=True, approval_prompt="costly 4K run, ok?")
        pending = await farm.wait_status("ask", S.PENDING)
        assert pending.prompt == "costly 4K run, ok?"
        await farm.submit("deny-me", approval_required=True)
        await farm.wait_status("deny-me", S.PENDING)
        await farm.send(
            RespondToJob(
                id=farm.command_id(), job="ask", at=time.time(), approve=True, answer="yes"
            )
        )
        await farm.send(
            RespondToJob(
                id=farm.command_id(), job="deny-me", at=time.time(), approve=False, answer="too big"
            )
        )
        await farm.wait_status("ask", S.COMPLETED)
        denied = await farm.wait_status("deny-me", S.CANCELED)
    assert "too big" in denied.message
    assert "JobAssigned" not in await farm.kinds("deny-me")


async def test_bad_and_repeated_commands_change_nothing(farm: Farm) -> None:
    """Garbage is set aside (a refusal where it names a job); a resent command is a no-op."""
    await farm.agent("a1")
    async with scheduler(farm.store) as sched:
        await farm.js.publish(farm.subjects.command("cancel"), b"\xff not json")
        await farm.js.publish(
            farm.subjects.command("cancel"), b'{"type":"CancelJob","id":"broken-1","job":"x1"}'
        )
        await farm.submit("ok")
        await farm.wait_status("ok", S.COMPLETED)
        await wait_until(lambda: _true(sched.stats.malformed >= 2), "both set aside")
        (refusal,) = await farm.history("x1")
        assert isinstance(refusal, CommandRefused)
        assert refusal.command_id == "broken-1"
        assert "malformed" in refusal.reason
        # The same command id twice: one submission.
        again = SubmitJob(
            id="same-id", job="twice", at=time.time(), spec=JobSpec(scenario="720p-h264")
        )
        await farm.send(again)
        await farm.send(again)
        await farm.wait_status("twice", S.COMPLETED)
    assert (await farm.kinds("twice")).count("JobSubmitted") == 1
    assert "CommandRefused" not in await farm.kinds("twice")


async def _true(value: bool) -> bool:
    return value


async def test_restart_replays_from_snapshot_and_tail_without_losing_or_doubling(
    farm: Farm,
) -> None:
    """A scheduler stopped mid-stream and a new one started: every job completes once."""
    await farm.agent("a1", slots=2)
    await farm.agent("a2", slots=2)
    async with scheduler(farm.store) as first:
        for n in range(10):
            await farm.submit(f"j{n}")
        await farm.wait_status("j0", S.COMPLETED)
        await first.snapshot()
    for n in range(10, 20):
        await farm.submit(f"j{n}")  # while no scheduler runs: durable commands wait
    async with scheduler(farm.store) as second:
        assert second.core.covered > 0
        for n in range(20):
            await farm.wait_status(f"j{n}", S.COMPLETED)
    runs = [key for agent in farm.agents for key in agent.executions]
    assert len(runs) == len(set(runs)) == 20
    for n in range(20):
        history = await farm.history(f"j{n}")
        assigned = [e.attempt for e in history if isinstance(e, JobAssigned)]
        assert assigned == [1]
