"""What an FFmpeg binary offers: version, encoders, quality filters and protocols.

The parsers are pure functions over FFmpeg's own listings (``-encoders``, ``-filters``,
``-protocols``), so they are tested on captured text; ``probe`` runs the binary once at start.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

import msgspec

from agent.ffmpeg_binary import run_flag, version_line

QUALITY_FILTERS: Final = frozenset({"libvmaf", "psnr", "ssim"})
# Encoders that drive hardware FFmpeg lists whether or not the hardware exists. NVENC ones are
# proven by a test encode (agent.capabilities); the others are not offered at all.
HARDWARE_SUFFIXES: Final = (
    "_nvenc", "_qsv", "_vaapi", "_amf", "_vulkan", "_v4l2m2m", "_videotoolbox", "_mediacodec",
    "_mf", "_omx", "_rkmpp", "_d3d12va", "_oh",
)  # fmt: skip
_LISTING_ROW: Final = re.compile(r"^\s*([A-Z.|]{2,6})\s+(\S+)\s")
_VERSION: Final = re.compile(r"^ffmpeg version (\S+)")


class FfmpegInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What one FFmpeg binary can do, as its listings say (hardware not yet proven)."""

    path: str
    version: str
    encoders: tuple[str, ...] = ()  # video encoders, hardware ones included
    filters: tuple[str, ...] = ()  # the quality filters present
    protocols: tuple[str, ...] = ()  # protocols it can read or write


def parse_version(first_line: str) -> str:
    """``ffmpeg version n7.1 Copyright …`` → ``n7.1``; empty when the line is not FFmpeg's."""
    found = _VERSION.match(first_line.strip())
    return found.group(1) if found else ""


def _rows(text: str) -> list[tuple[str, str]]:
    """(flags, name) for each row after the ``------`` or legend of a listing."""
    body = text.split("------", 1)[1] if "------" in text else text
    return [
        (found.group(1), found.group(2))
        for line in body.splitlines()
        if (found := _LISTING_ROW.match(line))
    ]


def parse_encoders(text: str) -> tuple[str, ...]:
    """Video encoder names from ``ffmpeg -encoders`` (rows whose flags start with V)."""
    return tuple(name for flags, name in _rows(text) if flags.startswith("V") and name != "=")


def parse_filters(text: str) -> tuple[str, ...]:
    """The quality filters (libvmaf, psnr, ssim) that ``ffmpeg -filters`` lists."""
    names = {name for _, name in _rows(text)}
    return tuple(sorted(names & QUALITY_FILTERS))


def parse_protocols(text: str) -> tuple[str, ...]:
    """Every protocol ``ffmpeg -protocols`` lists under Input or Output, sorted."""
    found: set[str] = set()
    listing = False
    for raw in text.splitlines():
        line = raw.strip()
        if line in {"Input:", "Output:"}:
            listing = True
        elif listing and line and " " not in line and not line.endswith(":"):
            found.add(line)
    return tuple(sorted(found))


def is_hardware(encoder: str) -> bool:
    """Whether an encoder drives a device rather than the CPU."""
    return encoder.endswith(HARDWARE_SUFFIXES)


def _listing(ffmpeg: Path, flag: str) -> str:
    return run_flag(ffmpeg, flag).stdout.decode(errors="replace")


def probe(ffmpeg: Path) -> FfmpegInfo:
    """Run the binary's listings once and parse them."""
    return FfmpegInfo(
        path=str(ffmpeg),
        version=parse_version(version_line(ffmpeg)),
        encoders=parse_encoders(_listing(ffmpeg, "-encoders")),
        filters=parse_filters(_listing(ffmpeg, "-filters")),
        protocols=parse_protocols(_listing(ffmpeg, "-protocols")),
    )
