"""Timers: retries come due, budgets and stalls time out, silent agents are lost."""

from __future__ import annotations

import msgspec

from events.commands import RequeueDue, TimeOut
from events.enums import JobStatus, TimeoutKind
from events.job import JobState
from ffrtmp.scheduler.timers import TimerSettings, job_timers, lost_agents

S = JobStatus
SETTINGS = TimerSettings()
RUNNING = JobState(
    job="j1",
    status=S.RUNNING,
    agent="ag1",
    attempt=2,
    budget_s=100.0,
    assigned_at=990.0,
    started_at=1000.0,
    last_progress_at=1000.0,
)


def test_retry_comes_due_at_its_time() -> None:
    """A retrying job requeues once its retry time has come, not before."""
    job = JobState(job="j1", status=S.RETRYING, retry_at=1005.0)
    assert job_timers(job, 1004.9, SETTINGS) is None
    assert job_timers(job, 1005.0, SETTINGS) == RequeueDue()


def test_budget_is_counted_from_start() -> None:
    """A running attempt times out when it runs longer than its budget."""
    assert job_timers(RUNNING, 1050.0, SETTINGS) is None
    late = msgspec.structs.replace(RUNNING, last_progress_at=1099.0)
    assert job_timers(late, 1100.5, SETTINGS) == TimeOut(attempt=2, kind=TimeoutKind.BUDGET)


def test_silence_is_a_stall() -> None:
    """No progress for longer than the stall threshold times the attempt out as stalled."""
    assert job_timers(RUNNING, 1060.5, SETTINGS) == TimeOut(attempt=2, kind=TimeoutKind.STALLED)
    progressing = msgspec.structs.replace(RUNNING, last_progress_at=1050.0)
    assert job_timers(progressing, 1060.5, SETTINGS) is None


def test_assigned_but_never_started_times_out_on_budget() -> None:
    """An attempt the agent never started is counted from its assignment."""
    assigned = msgspec.structs.replace(RUNNING, status=S.ASSIGNED, started_at=0.0)
    assert job_timers(assigned, 1090.5, SETTINGS) == TimeOut(attempt=2, kind=TimeoutKind.BUDGET)


def test_paused_and_queued_jobs_have_no_clock() -> None:
    """A paused or queued job never times out."""
    for status in (S.PAUSED, S.QUEUED, S.PENDING, S.COMPLETED):
        assert job_timers(msgspec.structs.replace(RUNNING, status=status), 9999.0, SETTINGS) is None


def test_agents_silent_past_the_threshold_are_lost() -> None:
    """An agent last heard more than 15 s ago is lost; one heard 15 s ago is not."""
    assert lost_agents({"a": 100.0, "b": 85.0, "c": 84.9}, 100.0, SETTINGS) == ["c"]
