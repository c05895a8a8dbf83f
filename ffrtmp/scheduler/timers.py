"""Pure timers: which decisions the clock has made due.

The scheduler owns the clock. Each tick it asks these functions what time has decided — a
retry's backoff passed, an attempt over its budget or silent too long, an agent that stopped
heartbeating — and puts the answers to the job decider, which records them as events. Replay
never calls these: it folds the events they led to.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from events.commands import RequeueDue, TimeOut
from events.enums import TICKING_STATUSES, JobStatus, TimeoutKind
from events.job import JobState

S = JobStatus


class TimerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How long silence may last before it becomes a decision. Documented defaults."""

    heartbeat_s: float = 5.0  # how often agents heartbeat
    agent_lost_after_s: float = 15.0  # three missed heartbeats
    stalled_after_s: float = 60.0  # a running attempt with no progress for this long


def timer_problem(settings: TimerSettings) -> str | None:
    """Why these windows would time out healthy work, or None when they would not.

    Progress reaches the scheduler with each heartbeat: a stall window under two heartbeats
    would time out an attempt that advances between two of them.
    """
    if settings.stalled_after_s < 2 * settings.heartbeat_s:
        return (
            f"--stalled-after-s {settings.stalled_after_s:g} is under two heartbeats "
            f"({2 * settings.heartbeat_s:g} s): attempts that advance would be timed out"
        )
    return None


def job_timers(job: JobState, now: float, settings: TimerSettings) -> RequeueDue | TimeOut | None:
    """The one timer due on this job now, if any; budgets are checked before stalls.

    An attempt without a budget (``budget_s`` 0: a live stream without an end, a whole input not
    yet opened) is protected by the stall window alone, from its assignment until it starts.
    """
    if job.status is S.RETRYING and job.retry_at is not None and job.retry_at <= now:
        return RequeueDue()
    if job.status not in TICKING_STATUSES:
        return None
    since = job.started_at if job.status is S.RUNNING else job.assigned_at
    if job.budget_s > 0 and now - since > job.budget_s:
        return TimeOut(attempt=job.attempt, kind=TimeoutKind.BUDGET)
    last = job.last_progress_at if job.status is S.RUNNING else job.assigned_at
    if (job.status is S.RUNNING or job.budget_s <= 0) and now - last > settings.stalled_after_s:
        return TimeOut(attempt=job.attempt, kind=TimeoutKind.STALLED)
    return None


def due_at(job: JobState, settings: TimerSettings) -> float | None:
    """The earliest time at which ``job_timers`` could fire on this state; None: never.

    ``job_timers`` fires strictly after it (``now - since > window``), or at it for a retry.
    Later stamps (progress seen, a resume) only move it later, so a time computed from older
    stamps is early, never late: the scheduler checks again then, and finds a later one.
    """
    if job.status is S.RETRYING:
        return job.retry_at
    if job.status not in TICKING_STATUSES:
        return None
    since = job.started_at if job.status is S.RUNNING else job.assigned_at
    last = job.last_progress_at if job.status is S.RUNNING else job.assigned_at
    times = []
    if job.budget_s > 0:
        times.append(since + job.budget_s)
    if job.status is S.RUNNING or job.budget_s <= 0:
        times.append(last + settings.stalled_after_s)
    return min(times)


def lost_agents(last_heard: Mapping[str, float], now: float, settings: TimerSettings) -> list[str]:
    """Agents not heard from (heartbeat or event) for longer than the threshold, sorted."""
    return sorted(
        agent for agent, heard in last_heard.items() if now - heard > settings.agent_lost_after_s
    )
