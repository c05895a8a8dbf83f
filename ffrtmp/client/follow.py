"""Following one job live: its events as they land, its progress from the agent's heartbeat.

The job's state is the fold of its events (an ordered consumer on
``<prefix>.evt.job.<job>.>``); fps and speed come from the ``RunningJob`` in the holding
agent's last heartbeat, which is telemetry, not the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from events.base import JobEventBase
from events.enums import STARTED_STATUSES
from events.errors import FfrtmpError
from events.job import JobState, evolve, initial, is_terminal
from events.work import Heartbeat, RunningJob
from ffrtmp.client.conn import Conn
from ffrtmp.client.read import entries, heartbeat

Show = Callable[[JobState, RunningJob | None, int], None]
"""Draws the job as folded, its live progress, and the log sequence of its last event."""


class Timeout(FfrtmpError):
    """Gave up waiting for the job to end (exit 5)."""

    exit_code = 5
    """The CLI's exit code for a wait that ran out (``ffrtmp.cli.common.EXIT_WAITING``)."""


def live_of(beat: Heartbeat | None, state: JobState) -> RunningJob | None:
    """The heartbeat's entry for the job's current attempt."""
    if beat is None:
        return None
    for running in beat.running:
        if running.job == state.job and running.attempt == state.attempt:
            return running
    return None


async def follow_job(conn: Conn, job: str, show: Show, timeout_s: float | None = None) -> JobState:
    """Fold the job's events as they land and call ``show``; return once it has ended."""
    state, seq = initial(job), 0
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    async for entry in entries(conn, conn.subjects.job_events(job), follow=True, idle_s=0.5):
        if entry is not None and isinstance(entry.event, JobEventBase):
            state, seq = evolve(state, entry.event), entry.seq
        live = None
        if state.agent and state.status in STARTED_STATUSES:
            live = live_of(await heartbeat(conn, state.agent), state)
        show(state, live, seq)
        if is_terminal(state):
            return state
        if deadline is not None and time.monotonic() > deadline:
            raise Timeout(f"job {job} is still {state.status} after {timeout_s:g} s")
    return state  # pragma: no cover -- a follow only ends by returning above
