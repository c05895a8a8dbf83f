"""What the agent service asks of whatever does the work: start an attempt, steer it, await it.

The service (pull consumer, slots, reports, heartbeats, controls) is the same whether the work
is a real FFmpeg process or a scripted stand-in: ``FfmpegEngine`` for a farm, a no-op or scripted
engine for ``ffrtmp bench e2e`` and scheduler tests. An engine never writes to the log; it says
what happened and the service reports it through ``agent.report.JobWriter``.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from events.enums import FailureReason
from events.job_events import JobResults
from events.work import Dispatch


class LiveProgress(msgspec.Struct, frozen=True, kw_only=True):
    """An attempt's latest progress, for heartbeats and coarse milestones."""

    percent: float = 0.0
    frames: int = 0
    fps: float | None = None
    speed: float | None = None  # media seconds per wall second
    bitrate_kbps: float | None = None
    out_time_s: float | None = None  # media time produced so far: grows while output advances
    media_s: float | None = None  # media the attempt will encode, once known; None: no end
    checked_frames: int = 0  # frames the quality pass has compared: it advances after the encode


class Done(msgspec.Struct, frozen=True, kw_only=True):
    """The attempt produced its output."""

    results: JobResults


class Failed(msgspec.Struct, frozen=True, kw_only=True):
    """The attempt failed, or could not start, for a classified reason."""

    reason: FailureReason
    message: str


class Stopped(msgspec.Struct, frozen=True, kw_only=True):
    """The attempt ended because it was canceled."""


Ending = Done | Failed | Stopped


class Execution(Protocol):
    """One running attempt."""

    def progress(self) -> LiveProgress:
        """Its latest progress."""
        ...

    def pause(self) -> bool:
        """Suspend it; True when it was running and is now suspended."""
        ...

    def resume(self) -> bool:
        """Continue it; True when it was suspended and now runs."""
        ...

    async def cancel(self) -> None:
        """End it (terminate, then kill after a grace period); returns once it is gone."""
        ...

    async def wait(self) -> Ending:
        """Its end: done, failed, or stopped by ``cancel``."""
        ...

    def log_tail(self) -> bytes:
        """The end of its diagnostic output (FFmpeg's stderr), kept for ``ffrtmp jobs logs``."""
        ...


class Engine(Protocol):
    """Starts attempts."""

    async def start(self, dispatch: Dispatch) -> Execution | Failed:
        """Begin the attempt, or say at once why it cannot run (bad input, disk full …)."""
        ...
