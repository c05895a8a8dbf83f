"""A work clock: seconds an attempt has run, stopped while it is paused.

Both a job's budget and a scripted attempt's length count work, not wall time: an operator's
pause must never time a job out. The clock is the monotonic one, read at the edge.
"""

from __future__ import annotations

import time


class WorkClock:
    """Seconds of work since creation; ``stop`` and ``go`` bracket a pause."""

    def __init__(self) -> None:
        """Start counting now."""
        self._done = 0.0
        self._since: float | None = time.monotonic()

    @property
    def stopped(self) -> bool:
        """Whether the clock is held (the attempt is paused)."""
        return self._since is None

    def elapsed(self) -> float:
        """Seconds counted so far."""
        running = 0.0 if self._since is None else time.monotonic() - self._since
        return self._done + running

    def stop(self) -> None:
        """Hold the clock; a second stop changes nothing."""
        self._done, self._since = self.elapsed(), None

    def go(self) -> None:
        """Count again; going while running changes nothing."""
        if self._since is None:
            self._since = time.monotonic()
