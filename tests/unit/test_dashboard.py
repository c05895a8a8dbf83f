"""The live view of ``ffrtmp top`` and ``ffrtmp up``, and the demo's mix, as pure functions."""

from __future__ import annotations

import io

from rich.console import Console

from events.agent import AgentState
from events.agent_events import Capabilities, GpuInfo
from events.enums import AgentStatus, FailureReason, JobStatus, Priority, Queue
from events.job import JobState
from events.scenarios import scenario
from events.spec import JobSpec, validate
from events.work import GpuTelemetry, Heartbeat, RunningJob
from ffrtmp.cli.dashboard import frame, render, statuses, transitions
from ffrtmp.cli.demo import MISSING_INPUT, DemoRow, explain_hint, mix, summary_line
from ffrtmp.client.read import FarmView

S = JobStatus
GPU = Capabilities(
    hostname="gpu-box",
    gpus=(GpuInfo(index=0, name="RTX A2000", memory_bytes=6 << 30, nvenc_sessions=3),),
)


def _job(job: str, status: JobStatus, queue: Queue = Queue.DEFAULT, **more: object) -> JobState:
    spec = JobSpec(scenario="720p-h264", queue=queue)
    return JobState(job=job, status=status, spec=spec, **more)  # type: ignore[arg-type]


def _view() -> FarmView:
    jobs = [
        _job("run1", S.RUNNING, Queue.LIVE, agent="gpu-1", attempt=2, percent=10.0),
        _job("wait1", S.QUEUED, Queue.LIVE),
        _job("wait2", S.PENDING, Queue.BATCH),
        _job("done1", S.COMPLETED),
        _job("old", S.FAILED, agent="cpu-1", attempt=1, finished_at=100.0,
             reason=FailureReason.USER_ERROR, message="input file x does not exist"),
        _job("new", S.REJECTED, finished_at=200.0, reason=FailureReason.CAPABILITY_MISMATCH),
    ]  # fmt: skip
    agents = [
        AgentState(agent="gpu-1", status=AgentStatus.ONLINE, capabilities=GPU, slots=2),
        AgentState(agent="cpu-1", status=AgentStatus.ONLINE, slots=1, quarantined=True,
                   quarantine_reason="drain: maintenance"),
    ]  # fmt: skip
    return FarmView(jobs={j.job: j for j in jobs}, agents={a.agent: a for a in agents}, seq=42)


BEAT = Heartbeat(
    agent="gpu-1", at=995.0, slots=2, free_slots=1, cpu_percent=37.0,
    running=(RunningJob(job="run1", attempt=2, percent=55.0, fps=240.0, speed=8.0),),
    gpus=(GpuTelemetry(index=0, utilization_percent=35.0, temperature_c=61.0),),
)  # fmt: skip


def test_frame_counts_queues_and_takes_progress_from_heartbeats() -> None:
    """Queues count waiting/active/finished; a running job's progress is its agent's heartbeat."""
    shown = frame(_view(), {"gpu-1": BEAT}, now=1000.0)
    queues = {q.queue: q for q in shown.queues}
    assert (queues["live"].waiting, queues["live"].active) == (1, 1)
    assert queues["batch"].waiting == 1
    assert (queues["default"].completed, queues["default"].failed) == (1, 2)
    [running] = shown.running
    assert (running.id, running.percent, running.fps, running.speed) == ("run1", 55.0, 240.0, 8.0)
    agents = {a.id: a for a in shown.agents}
    assert agents["gpu-1"].busy == 1
    assert agents["gpu-1"].gpu == "0: RTX A2000 35% 61°C"
    assert agents["cpu-1"].status == "drained"


def test_recent_failures_are_newest_first_with_reason_and_place() -> None:
    """Failures list the latest first, saying why and where they last ran."""
    shown = frame(_view(), {}, now=1000.0)
    assert [f.id for f in shown.failures] == ["new", "old"]
    assert shown.failures[1].reason == "user_error: input file x does not exist"
    assert (shown.failures[1].agent, shown.failures[1].attempt) == ("cpu-1", 1)
    assert frame(_view(), {}, now=1000.0, failures=1).failures[0].id == "new"


def test_render_draws_every_section_and_says_when_one_is_empty() -> None:
    """The drawn frame names the running job and its progress; an empty farm says so plainly."""
    out = io.StringIO()
    console = Console(file=out, width=200, no_color=True)
    console.print(render(frame(_view(), {"gpu-1": BEAT}, now=1000.0)))
    text = out.getvalue()
    for needle in ("Queues", "Agents", "Running", "Recent failures", "run1", "55%", "61°C"):
        assert needle in text
    out = io.StringIO()
    Console(file=out, width=200).print(render(frame(FarmView(), {}, now=0.0)))
    for needle in ("no agents registered yet", "nothing running", "no failures"):
        assert needle in out.getvalue()


def test_transitions_print_each_change_once() -> None:
    """The plain log has a line per status change, with the failure reason at the end."""
    seen: dict[str, str] = {}
    view = _view()
    lines = transitions(seen, view)
    assert len(lines) == len(view.jobs)
    assert any("run1 720p-h264 running on gpu-1" in line for line in lines)
    assert any(line.endswith("failed: user_error: input file x does not exist") for line in lines)
    assert transitions(seen, view) == []


def test_the_demo_mix_covers_queues_priorities_and_the_three_lessons() -> None:
    """Every queue and priority, an NVENC job, a missing input and an approval, all valid."""
    jobs = mix(2.0)
    specs = [job.spec for job in jobs]
    assert all(validate(spec) == spec for spec in specs)
    assert {s.queue for s in specs} == set(Queue)
    assert {s.priority for s in specs} == set(Priority)
    assert sum(scenario(s.scenario).needs_gpu for s in specs) == 1
    assert [s.input for s in specs].count(MISSING_INPUT) == 1
    assert sum(s.approval_required for s in specs) == 1
    assert all(s.duration_s == 2.0 for s in specs)
    assert len({job.name for job in jobs}) == len(jobs)


def _row(job: str, status: str, reason: str = "") -> DemoRow:
    return DemoRow(id=job, name=job, shows="", status=status, scenario="480p-h264",
                   queue="default", priority="medium", agent="", attempt=0, percent=0.0,
                   reason=reason)  # fmt: skip


def test_summary_and_the_why_hint_name_the_failed_job() -> None:
    """The summary counts outcomes with their reasons; the hint shows the three commands."""
    rows = [
        _row("a", "completed"), _row("b", "completed"),
        _row("c", "failed", "user_error: no such file"),
        _row("d", "rejected", "capability_mismatch: no NVENC"),
    ]  # fmt: skip
    line = summary_line(rows, 12.4)
    assert line.startswith("4 jobs in 12 s: 2 completed")
    assert "1 failed (user_error)" in line
    assert "1 rejected (capability_mismatch)" in line
    hint = explain_hint(rows, " --nats nats://h:1", logged=True)
    assert hint[0] == "Why did job c fail, and where did it run?"
    for verb in ("status", "history", "logs"):
        assert any(f"ffrtmp jobs {verb} c --nats nats://h:1" in h for h in hint)
    assert explain_hint([_row("a", "completed")], "") == []


def test_the_why_hint_suggests_logs_only_where_one_was_kept() -> None:
    """A job that failed before FFmpeg ran, or was rejected, has no log: no ``jobs logs`` line."""
    rows = [_row("c", "failed", "user_error: no such file"), _row("d", "rejected")]
    hint = explain_hint(rows, "", logged=False)
    assert any("ffrtmp jobs status c" in h for h in hint)
    assert not any("jobs logs" in h for h in hint)


def test_a_log_started_on_a_history_prints_only_what_is_new_oldest_first() -> None:
    """``up --no-live`` restarted: the history is not printed again; new changes come in order."""
    view = _view()
    seen = statuses(view)
    assert transitions(seen, view) == []
    view.jobs["wait1"] = _job("wait1", S.RUNNING, Queue.LIVE, agent="gpu-1", attempt=1)
    view.jobs["wait2"] = _job("wait2", S.QUEUED, Queue.BATCH)
    view.changed_at.update({"wait1": 300.0, "wait2": 200.0})
    lines = transitions(seen, view)
    assert len(lines) == 2
    assert "job wait2 720p-h264 queued" in lines[0]
    assert "job wait1 720p-h264 running on gpu-1" in lines[1]
