"""Pure: FFmpeg's ``-progress`` output folded into samples, live progress and a stall count.

FFmpeg writes a block of ``key=value`` lines every stats period, ending with
``progress=continue`` (or ``progress=end`` for the last one). Values may be ``N/A``. The parser
is fed one line at a time and hands back a ``Sample`` when a block ends; nothing here reads a
clock, so the stall counter is given the wall time of each sample.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from agent.engine import LiveProgress

_NUMBER: Final = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_KBITS: Final = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*kbits/s\s*$")
STALL_LAG_S: Final = 1.0  # a live output a full second behind real time has stalled


class Sample(msgspec.Struct, frozen=True, kw_only=True):
    """One progress block, each figure None where FFmpeg said N/A or nothing."""

    frames: int = 0
    fps: float | None = None
    bitrate_kbps: float | None = None
    total_size: int | None = None  # bytes muxed so far
    out_time_s: float | None = None  # media time encoded so far
    speed: float | None = None  # media seconds per wall second, averaged since start
    ended: bool = False


def _float(value: str) -> float | None:
    found = _NUMBER.match(value.strip())
    return float(found.group(0)) if found else None


def _kbps(value: str) -> float | None:
    found = _KBITS.match(value)
    return float(found.group(1)) if found else None


def _int(value: str) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def _out_time(fields: dict[str, str]) -> float | None:
    micros = _int(fields.get("out_time_us", ""))
    if micros is None:
        micros = _int(fields.get("out_time_ms", ""))
    return None if micros is None or micros < 0 else micros / 1e6  # out_time_ms is µs too


def sample_of(fields: dict[str, str]) -> Sample:
    """The sample one block's fields describe."""
    speed = fields.get("speed", "").strip().removesuffix("x")
    return Sample(
        frames=max(0, _int(fields.get("frame", "")) or 0),
        fps=_float(fields.get("fps", "")),
        bitrate_kbps=_kbps(fields.get("bitrate", "")),
        total_size=_int(fields.get("total_size", "")),
        out_time_s=_out_time(fields),
        speed=_float(speed),
        ended=fields.get("progress") == "end",
    )


class ProgressParser:
    """Feeds lines in, gets a ``Sample`` out at the end of each block."""

    def __init__(self) -> None:
        """Start with an empty block."""
        self._fields: dict[str, str] = {}

    def feed(self, line: str) -> Sample | None:
        """Take one line; the block's sample when this line ended it."""
        key, sep, value = line.strip().partition("=")
        if not sep:
            return None
        self._fields[key.strip()] = value.strip()
        if key.strip() != "progress":
            return None
        fields, self._fields = self._fields, {}
        return sample_of(fields)


def live(sample: Sample, duration_s: float | None) -> LiveProgress:
    """What a heartbeat shows: percent of the media to encode done (0 while that is unknown)."""
    done = sample.out_time_s or 0.0
    percent = min(100.0, max(0.0, 100.0 * done / duration_s)) if duration_s else 0.0
    return LiveProgress(
        percent=percent,
        frames=sample.frames,
        fps=sample.fps,
        speed=sample.speed,
        bitrate_kbps=sample.bitrate_kbps,
        out_time_s=sample.out_time_s,
        media_s=duration_s,
    )


class StallCounter:
    """Counts underruns of a live output: each time it fell a full second behind real time.

    A live output paced at 1.0x delivers media time as fast as wall time passes. The counter
    follows the lag (wall time passed minus media time delivered) against the smallest lag seen;
    when the lag has grown by ``lag_s`` (default ``STALL_LAG_S``, one second) the output ran
    below real time long enough to lose a second, or delivered nothing for a second: a viewer's
    buffer ran dry, one stall. The baseline then moves to the new lag (the viewer rebuffered).
    Jitter between samples (0.98x then 1.02x) never adds up to a stall. Samples before media
    time first advances (encoder start-up) are ignored; ``rebase`` forgets the baseline after a
    pause, which is not a stall.
    """

    def __init__(self, lag_s: float = STALL_LAG_S) -> None:
        """Start with no stalls and no baseline."""
        self.lag_s = lag_s
        self.stalls = 0
        self._best: float | None = None  # the smallest lag since the start or the last stall

    def observe(self, wall_s: float, out_time_s: float | None) -> None:
        """Take a sample's wall time and media time."""
        if out_time_s is None or out_time_s <= 0:
            return
        lag = wall_s - out_time_s
        if self._best is None or lag < self._best:
            self._best = lag
        elif lag - self._best >= self.lag_s:
            self.stalls += 1
            self._best = lag

    def rebase(self) -> None:
        """Forget the baseline, so time spent paused counts as no stall."""
        self._best = None
