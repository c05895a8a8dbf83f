"""Drawing a followed job: a progress bar with status, fps and speed, and the exit code.

``submit --wait`` and ``status --follow`` draw what ``ffrtmp.client.follow`` reads.
"""

from __future__ import annotations

from typing import Final

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from events.enums import JobStatus
from events.job import JobState, is_terminal
from events.work import RunningJob
from ffrtmp.cli.common import EXIT_CANCELED, EXIT_FAILED, EXIT_OK
from ffrtmp.client.render import failure

S = JobStatus
OUTCOME_EXIT: Final = {
    S.COMPLETED: EXIT_OK,
    S.FAILED: EXIT_FAILED,
    S.CANCELED: EXIT_CANCELED,
    S.REJECTED: EXIT_CANCELED,
}


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
