"""Pause, resume and stop a child's process group, and the time it ran unpaused.

Every engine that runs a process steers it the same way: pause stops the whole group
(SIGSTOP), resume continues it (SIGCONT), and time spent stopped is not counted, so rates
describe the encoder rather than the operator. A stop sends its signals in turn (FFmpeg:
SIGTERM; gst-launch: SIGINT, which with ``-e`` ends the stream cleanly, then SIGTERM), continuing
a stopped group so it can act on them, each given a grace period, and SIGKILL last.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Sequence

from agent.child import Child

log = logging.getLogger(__name__)


class Steering:
    """The controls of one running child; ``child`` may be replaced by a later pass."""

    def __init__(self, child: Child, clock: Callable[[], float]) -> None:
        """Start counting unpaused time now."""
        self.child = child
        self._clock = clock
        self._started = clock()
        self._paused_at: float | None = None
        self._paused_s = 0.0

    def active_s(self) -> float:
        """Seconds the child has run, pauses excluded: what a time budget counts."""
        now = self._clock()
        paused = self._paused_s + (now - self._paused_at if self._paused_at is not None else 0.0)
        return now - self._started - paused

    @property
    def paused(self) -> bool:
        """Whether the process group is stopped."""
        return self._paused_at is not None

    def pause(self) -> bool:
        """SIGSTOP the process group; True when it was running."""
        if self._paused_at is not None or not self.child.signal(signal.SIGSTOP):
            return False
        self._paused_at = self._clock()
        return True

    def resume(self) -> bool:
        """SIGCONT the process group; True when it was paused."""
        if self._paused_at is None:
            return False
        self.child.signal(signal.SIGCONT)
        self._paused_s += self._clock() - self._paused_at
        self._paused_at = None
        return True

    async def stop(self, signals: Sequence[signal.Signals], grace_s: float) -> None:
        """Send each signal in turn until the child ends, each given ``grace_s``; then SIGKILL."""
        child = self.child
        for sig in signals:
            if not child.signal(sig):
                break  # it has already ended
            if not self.resume():  # stopped by someone else, perhaps: it must run to act
                child.signal(signal.SIGCONT)
            try:
                async with asyncio.timeout(grace_s):
                    await child.wait()
            except TimeoutError:
                log.warning("child %d ignored %s for %.1f s", child.pid, sig.name, grace_s)
            else:
                return
        child.signal(signal.SIGKILL)
        await child.wait()
