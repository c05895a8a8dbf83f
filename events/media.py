"""Pure: media inputs and outputs are data, never code.

A test-pattern input is one of a fixed set of FFmpeg sources with a few checked options,
written as FFmpeg writes a source: ``testsrc2``, ``smptebars=size=640x360:rate=25``,
``color=color=red:duration=5``. Nothing else is accepted: no filter chain (``,``), no second
graph (``;``), no labels, no other option, so an input can never name a file to read
(``movie=``, ``drawtext=textfile=``) or write (``psnr=stats_file=``). The FFmpeg source string is
rebuilt from the parsed values (``Pattern.lavfi``), never passed through.

File inputs and outputs are absolute paths: a relative one would resolve against whatever
directory the agent that runs the job happened to start in. ``within`` is the check an agent
confined to media roots makes before FFmpeg starts.
"""

from __future__ import annotations

import re
from pathlib import PurePath, PurePosixPath
from typing import Final

import msgspec

from events.errors import InvalidSpec

PATTERN_SOURCES: Final = frozenset(
    {"testsrc", "testsrc2", "smptebars", "smptehdbars", "rgbtestsrc", "color", "mandelbrot"}
)  # every engine has each (agent.gst_pipeline maps them to videotestsrc patterns)
PATTERN_OPTIONS: Final = ("size", "rate", "duration", "color")
MAX_SIDE: Final = 8192
MAX_RATE: Final = 240
MAX_PATTERN_DURATION_S: Final = 24 * 3600.0
_NAME: Final = re.compile(r"[a-z0-9]+")
_SIZE: Final = re.compile(r"([1-9]\d{0,4})x([1-9]\d{0,4})")
_RATE: Final = re.compile(r"[1-9]\d{0,2}")
_SECONDS: Final = re.compile(r"\d{1,6}(?:\.\d{1,3})?")
_COLOR: Final = re.compile(r"[a-zA-Z]{1,32}|0x[0-9a-fA-F]{6}(?:[0-9a-fA-F]{2})?")
_SHORT: Final = {"s": "size", "r": "rate", "d": "duration", "c": "color"}
_CONTROL: Final = re.compile(r"[\x00-\x1f]")  # C0 controls only: DEL and non-ASCII pass


class Pattern(msgspec.Struct, frozen=True, kw_only=True):
    """A test pattern: which source, and the options given (None: the scenario's)."""

    source: str
    width: int | None = None
    height: int | None = None
    rate: int | None = None
    duration_s: float | None = None
    color: str | None = None

    def lavfi(self, width: int, height: int, fps: int) -> str:
        """The FFmpeg source, at the pattern's own size and rate or else the given ones."""
        options = [
            f"size={self.width or width}x{self.height or height}",
            f"rate={self.rate or fps}",
        ]
        if self.duration_s is not None:
            options.append(f"duration={self.duration_s:g}")
        if self.color is not None:
            options.append(f"color={self.color}")
        return f"{self.source}=" + ":".join(options)


def pattern_name(value: str) -> str:
    """The source name an input starts with (``testsrc2`` of ``testsrc2=…``)."""
    return re.split(r"[=,;:\[\s]", value.strip(), maxsplit=1)[0]


def is_pattern(value: str) -> bool:
    """Whether the input names a test-pattern source (valid or not)."""
    return pattern_name(value) in PATTERN_SOURCES


def _refuse(value: str, why: str) -> InvalidSpec:
    allowed = ", ".join(sorted(PATTERN_SOURCES))
    return InvalidSpec(
        "input",
        f"test pattern {value[:80]!r}: {why}; a pattern is one of {allowed} with only "
        f"size=WxH, rate=N, duration=S (and color= for color), e.g. testsrc2=size=640x360:rate=30",
    )


def _option(pattern: Pattern, value: str, key: str, raw: str) -> Pattern:
    match key:
        case "size" if (m := _SIZE.fullmatch(raw)) is not None:
            width, height = int(m.group(1)), int(m.group(2))
            if width <= MAX_SIDE and height <= MAX_SIDE:
                return msgspec.structs.replace(pattern, width=width, height=height)
        case "rate" if _RATE.fullmatch(raw) and int(raw) <= MAX_RATE:
            return msgspec.structs.replace(pattern, rate=int(raw))
        case "duration" if _SECONDS.fullmatch(raw) and 0 < float(raw) <= MAX_PATTERN_DURATION_S:
            return msgspec.structs.replace(pattern, duration_s=float(raw))
        case "color" if pattern.source == "color" and _COLOR.fullmatch(raw):
            return msgspec.structs.replace(pattern, color=raw)
        case "size" | "rate" | "duration" | "color":
            pass
        case _:
            raise _refuse(value, f"unknown option {key[:20]!r}")
    raise _refuse(value, f"bad {key} {raw[:20]!r}")


def parse_pattern(value: str) -> Pattern:
    """The pattern ``value`` names; ``InvalidSpec`` for anything but a plain source."""
    name, sep, rest = value.strip().partition("=")
    if name not in PATTERN_SOURCES or not _NAME.fullmatch(name):
        raise _refuse(value, "not a plain test-pattern source (filter graphs are not accepted)")
    pattern = Pattern(source=name)
    if not sep:
        return pattern
    seen: set[str] = set()
    for item in rest.split(":"):
        key, eq, raw = item.partition("=")
        key = _SHORT.get(key, key)
        if not eq or key in seen:
            raise _refuse(value, f"option {item[:20]!r} is not KEY=VALUE given once")
        seen.add(key)
        pattern = _option(pattern, value, key, raw)
    return pattern


def check_path(field: str, value: str) -> None:
    """A file path must be absolute, without ``..`` or control characters."""
    path = PurePosixPath(value)
    if not path.is_absolute():
        raise InvalidSpec(
            field,
            f"{value[:120]!r} is a relative path; give an absolute path (a relative one would "
            "resolve on whichever agent runs the job)",
        )
    if ".." in path.parts or _CONTROL.search(value):
        raise InvalidSpec(field, f"{value[:120]!r} has '..' or control characters")


def within(path: PurePath, roots: tuple[PurePath, ...]) -> bool:
    """Whether ``path`` (already resolved) lies under one of ``roots``; no roots: anywhere."""
    return not roots or any(path == root or root in path.parents for root in roots)
