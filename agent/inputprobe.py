"""A file input opened once before the encode: can it be read, which audio does it carry.

The audio codec decides whether it is copied (when the output's container takes it). URL
inputs are not probed: a second fetch would cost a slow origin its time (and a live source
its only connection); their audio is encoded, and a 4xx is classified from the encode itself.

FFmpeg opens the input (``ffmpeg -i``, no output, so it exits at once) and its stream summary
is read. An input it cannot open fails the attempt before any encode, classified as an encode
failure would be: unreadable data is ``user_error`` (never retried), anything else
``runtime_error``.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Final

import msgspec

from agent.engine import Failed
from agent.inputheader import audio_codec, duration_of, header_text
from agent.outcome import classify

PROBE_TIMEOUT_S: Final = 20.0


class InputInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the probe found."""

    audio_codec: str | None = None
    duration_s: float | None = None  # None: N/A (a live source) or not printed


def parse(stderr: str) -> InputInfo | None:
    """The input's summary from ``ffmpeg -i``; None when FFmpeg could not open it."""
    head = header_text(stderr, finished=True)
    if head is None:
        return None
    return InputInfo(audio_codec=audio_codec(head), duration_s=duration_of(head))


def _run(ffmpeg: str, source: str, timeout_s: float) -> tuple[int, bytes]:
    try:
        done = subprocess.run(  # noqa: S603 - argv list, input already validated
            [ffmpeg, "-hide_banner", "-nostdin", "-rw_timeout", str(int(timeout_s * 1e6)),
             "-i", source],
            capture_output=True, timeout=timeout_s, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        return -1, (exc.stderr or b"") + b"\nopening the input timed out"
    return done.returncode, done.stderr


async def probe(ffmpeg: str, source: str, timeout_s: float = PROBE_TIMEOUT_S) -> InputInfo | Failed:
    """Open ``source`` once; its info, or the classified reason it cannot be read."""
    code, stderr = await asyncio.to_thread(_run, ffmpeg, source, timeout_s)
    info = parse(stderr.decode(errors="replace"))
    if info is not None:
        return info
    failed = classify(code if code > 0 else 1, stderr)
    return Failed(reason=failed.reason, message=failed.message.replace("FFmpeg", "input", 1))
