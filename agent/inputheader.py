"""Pure: what FFmpeg's own input header says about a job's input (its duration, its streams).

FFmpeg prints the header of every input it opens on stderr (``Input #0, mov,mp4,… from …``,
``Duration: 00:01:30.04, start: 0.000000, bitrate: …``, one ``Stream #0:n`` line per stream)
before it encodes a frame. The engine reads the encode's own header instead of probing first:
the input is opened once, which a live source or a one-time URL may require, and nothing waits
for a probe. imageio-ffmpeg ships no ffprobe; ``ffmpeg -i`` prints this same header.

This is the one reader of that header: the encode's live stderr (``input_header``) and a file
opened once before the encode (``agent.inputprobe``, ``header_text(…, finished=True)``) both
go through it.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

_DURATION: Final = re.compile(r"^\s*Duration: (?:N/A|(\d+):(\d\d):(\d\d(?:\.\d+)?))", re.MULTILINE)
_STREAM: Final = re.compile(
    r"^\s*Stream #0:\d+\S*: (Video|Audio|Subtitle|Data)(?:: (\w+))?", re.MULTILINE
)


class InputHeader(msgspec.Struct, frozen=True, kw_only=True):
    """The first input's header: its duration (None: N/A, a live source) and stream kinds."""

    duration_s: float | None = None
    video: int = 0
    audio: int = 0


def header_text(stderr: str, *, finished: bool = False) -> str | None:
    """The text of the first input's header in FFmpeg's stderr; None when there is none (yet).

    The header is complete once FFmpeg moves on to the outputs (``Output #0``, ``Stream
    mapping``), or, ``finished``, once FFmpeg has exited (``ffmpeg -i`` alone names no output,
    so its header runs to the end). An input that could not be opened has no header: None.
    """
    cut = min(
        (i for i in (stderr.find("\nOutput #0"), stderr.find("\nStream mapping:")) if i >= 0),
        default=len(stderr) if finished else -1,
    )
    start = stderr.find("Input #0")
    if start < 0 or cut < start:
        return None
    return stderr[start:cut]


def input_header(stderr: str) -> InputHeader | None:
    """The first input's header from an encode's stderr, or None when it is not all printed yet."""
    head = header_text(stderr)
    if head is None:
        return None
    kinds = [kind for kind, _codec in _STREAM.findall(head)]
    return InputHeader(
        duration_s=duration_of(head), video=kinds.count("Video"), audio=kinds.count("Audio")
    )


def audio_codec(head: str) -> str | None:
    """The codec of the header's first audio stream (``aac``); None when it has no audio."""
    return next((codec for kind, codec in _STREAM.findall(head) if kind == "Audio" and codec), None)


def duration_of(head: str) -> float | None:
    """The first ``Duration:`` of an input header in seconds; None when absent or N/A."""
    found = _DURATION.search(head)
    if found is None or found.group(1) is None:
        return None
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def media_s(planned_s: float | None, header: InputHeader | None) -> float | None:
    """Seconds of media the attempt encodes: the spec's duration, cut short by a shorter input."""
    probed = None if header is None else header.duration_s
    if planned_s is None:
        return probed
    return planned_s if probed is None else min(planned_s, probed)
