"""Pure: how an FFmpeg exit is classified, and what a finished attempt measured.

A non-zero exit whose last stderr lines say the input or the options are wrong (no such file,
invalid data, unknown option or encoder, …) is the job's fault: ``user_error``, never retried.
Any other non-zero exit, and death by a signal, is ``runtime_error`` (retried). The message is
the last lines of stderr that read like errors (FFmpeg prints encoder statistics after them),
else its last lines.
"""

from __future__ import annotations

import re
import signal
from typing import Final

import msgspec

from agent.engine import Failed
from agent.quality import Scores
from agent.scores import scored
from events.enums import FailureReason
from events.job_events import JobResults

USER_ERROR_MARKERS: Final = (
    "No such file or directory",
    "Invalid data found when processing input",
    "Invalid argument",
    "Unrecognized option",
    "Option not found",
    "Unknown encoder",
    "Error parsing options",
    "Error setting option",
    "Invalid frame size",
    "Permission denied",
    "does not contain any stream",
    "Unable to choose an output format",
    "Server returned 4",  # an http(s) input answered 4xx: retrying will not change it
    "HTTP error 4",
)
_ERROR_WORDS: Final = re.compile(
    r"error|failed|invalid|refused|no such|unknown|not found", re.IGNORECASE
)
MESSAGE_LINES: Final = 5
MESSAGE_CHARS: Final = 1000


def last_lines(stderr: bytes, count: int = MESSAGE_LINES) -> list[str]:
    """The last ``count`` non-empty lines of FFmpeg's stderr."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    return [line for line in lines if line][-count:]


def classify(returncode: int, stderr: bytes) -> Failed:
    """The failure a non-zero exit means."""
    lines = last_lines(stderr, 40)
    errors = [line for line in lines if _ERROR_WORDS.search(line)]
    shown = " | ".join((errors or lines)[-MESSAGE_LINES:])[-MESSAGE_CHARS:] or "no output on stderr"
    return exit_failure("FFmpeg", returncode, lines, shown, USER_ERROR_MARKERS)


def exit_failure(
    engine: str, returncode: int, lines: list[str], shown: str, markers: tuple[str, ...]
) -> Failed:
    """Every engine's rule for a non-zero exit, given what its stderr ``lines`` say.

    Death by a signal is ``runtime_error``; a line with one of the engine's user-error
    ``markers`` is ``user_error`` (never retried); any other exit is ``runtime_error``.
    """
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else ""
        return Failed(
            reason=FailureReason.RUNTIME_ERROR,
            message=f"{engine} was killed by signal {name or -returncode}: {shown}",
        )
    if any(marker in line for line in lines for marker in markers):
        return Failed(reason=FailureReason.USER_ERROR, message=f"{engine} refused the job: {shown}")
    return Failed(
        reason=FailureReason.RUNTIME_ERROR, message=f"{engine} exited {returncode}: {shown}"
    )


def energy_between(start: float | None, end: float | None) -> float | None:
    """Energy between two counter readings; None when either is missing."""
    if start is None or end is None:
        return None
    return end - start


class Measured(msgspec.Struct, frozen=True, kw_only=True):
    """The raw facts of a finished encode, before anything is derived from them."""

    wall_s: float  # running time, pauses excluded
    frames: int
    fps: int  # the scenario's frame rate: frames / fps is the media time encoded
    cpu_s: float | None = None
    output_bytes: int | None = None
    energy_j: float | None = None
    stalls: int | None = None


def results(measured: Measured, quality: Scores | None = None) -> JobResults:
    """The results a ``completed`` event carries, with rates and scores derived."""
    media_s = measured.frames / measured.fps if measured.fps > 0 else 0.0
    wall = measured.wall_s
    size = measured.output_bytes
    energy = measured.energy_j if measured.energy_j is not None and measured.energy_j > 0 else None
    quality = quality or Scores()
    return scored(
        JobResults(
            wall_s=wall,
            frames=measured.frames,
            encode_fps=measured.frames / wall if wall > 0 else None,
            speed=media_s / wall if wall > 0 else None,
            cpu_s=measured.cpu_s,
            output_bytes=size,
            bitrate_kbps=size * 8 / 1000 / media_s if size and media_s > 0 else None,
            energy_j=energy,
            psnr=quality.psnr,
            ssim=quality.ssim,
            vmaf=quality.vmaf,
            stalls=measured.stalls,
        )
    )
