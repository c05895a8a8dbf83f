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
STALL_SPEED: Final = 0.9  # a live output below 90 % of real time between samples is stalling


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


def live(sample: Sample, duration_s: float) -> LiveProgress:
    """What a heartbeat shows: percent of the job's duration encoded, fps, speed, bitrate."""
    done = sample.out_time_s or 0.0
    percent = min(100.0, max(0.0, 100.0 * done / duration_s)) if duration_s > 0 else 0.0
    return LiveProgress(
        percent=percent,
        frames=sample.frames,
        fps=sample.fps,
        speed=sample.speed,
        bitrate_kbps=sample.bitrate_kbps,
        out_time_s=sample.out_time_s,
    )


class StallCounter:
    """Counts how often a live output fell behind real time between two samples.

    Between consecutive samples the instantaneous speed is media time gained over wall time
    passed; falling below ``STALL_SPEED`` after keeping up starts one stall. ``rebase`` forgets
    the last sample (after a pause, which is not a stall).
    """

    def __init__(self, threshold: float = STALL_SPEED) -> None:
        """Start with no stalls and no previous sample."""
        self.threshold = threshold
        self.stalls = 0
        self._last: tuple[float, float] | None = None  # (wall s, media s)
        self._behind = False

    def observe(self, wall_s: float, out_time_s: float | None) -> None:
        """Take a sample's wall time and media time."""
        if out_time_s is None:
            return
        last, self._last = self._last, (wall_s, out_time_s)
        if last is None or wall_s <= last[0]:
            return
        behind = (out_time_s - last[1]) / (wall_s - last[0]) < self.threshold
        if behind and not self._behind:
            self.stalls += 1
        self._behind = behind

    def rebase(self) -> None:
        """Forget the previous sample, so time spent paused counts as no stall."""
        self._last = None
        self._behind = False
