"""Pure: what ``gst-launch-1.0`` says, read as progress and as a classified failure.

With ``-v`` and ``identity silent=false`` gst-launch prints one ``last-message = chain`` line
per buffer the progress element passes, with its timestamp: each is one frame handed to the
encoder, so counting them gives the frames and the last timestamp the media time encoded.

A failure prints ``ERROR: from element …: <message>`` lines (or ``WARNING: erroneous
pipeline: …`` when the pipeline does not parse) and their debug details on stderr. A missing,
unreadable or unrecognisable input, a 404, or a property the job set wrong is the job's fault
(``user_error``); anything else (a refused connection, a crash, a signal) is ``runtime_error``.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from agent.engine import Failed
from agent.gst_pipeline import PROGRESS
from agent.outcome import MESSAGE_CHARS, MESSAGE_LINES, exit_failure

_CHAIN: Final = re.compile(
    rf":{PROGRESS}: last-message = chain .*?pts: (\d+):(\d\d):(\d\d(?:\.\d+)?)"
    r"(?:, duration: (?:(\d+):(\d\d):(\d\d(?:\.\d+)?)|none))?"
)
_ELEMENT: Final = re.compile(r"^(?:ERROR|WARNING): from element (\S+): (.*)$")
USER_ERROR_MARKERS: Final = (
    "Resource not found",
    "No such file",
    "Could not open resource for reading",
    "Could not determine type of stream",
    "File not found",
    "Not Found",
    "Forbidden",
    "Permission denied",
    "could not set property",
    "no property",
)
_NOISE: Final = ("Additional debug info:", "ERROR: pipeline doesn't want to preroll.")


class GstSample(msgspec.Struct, frozen=True, kw_only=True):
    """Progress so far: frames given to the encoder and the media seconds they cover."""

    frames: int = 0
    out_time_s: float | None = None


def _seconds(hours: str, minutes: str, seconds: str) -> float:
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


class GstProgressParser:
    """Feeds gst-launch's stdout lines in, a ``GstSample`` out for each frame line."""

    def __init__(self) -> None:
        """No frame seen yet."""
        self._frames = 0
        self._first: float | None = None

    def feed(self, line: str) -> GstSample | None:
        """Take one line; the new sample when it was a frame of the progress element."""
        found = _CHAIN.search(line)
        if found is None:
            return None
        pts = _seconds(*found.group(1, 2, 3))
        length = _seconds(*found.group(4, 5, 6)) if found.group(4) else 0.0
        if self._first is None:
            self._first = pts
        self._frames += 1
        return GstSample(frames=self._frames, out_time_s=max(0.0, pts + length - self._first))


def error_lines(stderr: bytes) -> list[str]:
    """gst-launch's error report as short lines: element and message, then the details."""
    shown: list[str] = []
    for raw in stderr.decode(errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("../", "/")) or line in _NOISE:
            continue
        found = _ELEMENT.match(line)
        if found:
            element = found.group(1).rsplit("/", 1)[-1].rsplit(":", 1)[-1]
            line = f"{element}: {found.group(2)}"
        line = line.removeprefix("WARNING: ").removeprefix("ERROR: ")
        if line not in shown:
            shown.append(line)
    return shown


def classify(returncode: int, stderr: bytes) -> Failed:
    """The failure a non-zero exit of gst-launch means."""
    lines = error_lines(stderr)
    shown = " | ".join(lines[:MESSAGE_LINES])[-MESSAGE_CHARS:] or "no output on stderr"
    return exit_failure("GStreamer", returncode, lines, shown, USER_ERROR_MARKERS)
