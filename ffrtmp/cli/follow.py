"""Following one job live: its events as they land, its progress from the agent's heartbeat.

``submit --wait`` and ``status --follow`` share this. The job's state is the fold of its
events (an ordered consumer on ``<prefix>.evt.job.<job>.*``); fps and speed come from the
``RunningJob`` in the holding agent's last heartbeat, which is telemetry, not the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from events.base import JobEventBase
from events.enums import STARTED_STATUSES, JobStatus
from events.errors import FfrtmpError
from events.job import JobState, evolve, initial, is_terminal
from events.work import Heartbeat, RunningJob
from ffrtmp.cli.common import EXIT_CANCELED, EXIT_FAILED, EXIT_OK, EXIT_WAITING, Conn
from ffrtmp.cli.read import entries, heartbeat
from ffrtmp.cli.render import failure

S = JobStatus
OUTCOME_EXIT: Final = {
    S.COMPLETED: EXIT_OK,
    S.FAILED: EXIT_FAILED,
    S.CANCELED: EXIT_CANCELED,
    S.REJECTED: EXIT_CANCELED,
}
Show = Callable[[JobState, RunningJob | None, int], None]
"""Draws the job as folded, its live progress, and the log sequence of its last event."""


class Timeout(FfrtmpError):
    """Gave up waiting for the job to end (exit 5)."""

    exit_code = EXIT_WAITING


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


def _line(state: JobState, live: RunningJob | None) -> str:
    parts = [str(state.status)]
    if state.agent:
        parts.append(f"on {state.agent} (attempt {state.attempt})")
    if live is not None and live.fps is not None:
        parts.append(f"{live.fps:.1f} fps")
    if live is not None and live.speed is not None:
        parts.append(f"{live.speed:.2f}x")
    if state.status is S.RETRYING or is_terminal(state):
        parts.append(failure(state))
    return " ".join(p for p in parts if p)


class ProgressView:
    """A rich progress bar for one job: status, percent, fps and speed, redrawn in place."""

    def __init__(self, console: Console, job: str) -> None:
        """Create the bar; ``start``/``stop`` bracket its use."""
        self.progress = Progress(
            TextColumn(f"[bold]{job}[/]"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[line]}"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task(job, total=100.0, line="waiting for the scheduler")

    def show(self, state: JobState, live: RunningJob | None, _seq: int) -> None:
        """Redraw from the latest state and heartbeat."""
        percent = live.percent if live is not None else state.percent
        self.progress.update(self.task, completed=percent, line=_line(state, live))
