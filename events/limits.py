"""The limits every door enforces: one check of each id and string, the same for every client.

The CLI, the scheduler (for commands any NATS client can publish) and the agent (for what
arrives on its work subject) all call these before anything is stored or run, so what
``docs/api.md`` promises holds for a raw NATS client exactly as for ``ffrtmp``. Every match is
a full-string match: a pattern ending in ``$`` also accepts a trailing newline, and an id with
one becomes a subject the server refuses. Every failure is an ``InvalidSpec`` naming the field.
Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

from events.errors import InvalidSpec

MAX_COMMAND_ID: Final = 128
"""A command id: 1-128 of ``A-Z a-z 0-9 _ . : -`` (a UUID, a ULID, ffrtmp's own ids)."""
MAX_BY: Final = 128
"""Who asked (``by``): a user name, at most 128 characters."""
MAX_TEXT: Final = 1024
"""A reason, an answer, an approval prompt: at most 1024 characters."""
MAX_PRESET: Final = 64
"""An encoder preset: 1-64 of ``A-Z a-z 0-9 _ . -``."""
MAX_SCENARIO: Final = 64
"""A scenario name, at most 64 characters (the catalogue decides which exist)."""
MAX_LOCATION: Final = 4096
"""An input or output (a path or URL), at most 4096 characters, like a path on Linux."""
MAX_NESTING: Final = 8
"""JSON nesting a spec may have; a spec needs 2 (labels, quality metrics)."""

_COMMAND_ID: Final = re.compile(rf"[A-Za-z0-9_.:-]{{1,{MAX_COMMAND_ID}}}")
_PRESET: Final = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_PRESET}}}")
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def check_text(value: str, field: str, limit: int = MAX_TEXT, *, lines: bool = False) -> str:
    """A free text field: at most ``limit`` characters, no control characters but newlines."""
    if len(value) > limit:
        raise InvalidSpec(field, f"{len(value)} characters; at most {limit}")
    found = _CONTROL.search(value.replace("\n", "") if lines else value)
    if found:
        raise InvalidSpec(field, f"control character {found.group()!r} is not allowed")
    return value


def check_command_id(value: str) -> str:
    """A command id: the dedup key and the cause its events carry."""
    if not _COMMAND_ID.fullmatch(value):
        raise InvalidSpec(
            "command id", f"{value[:80]!r} must be 1-{MAX_COMMAND_ID} of A-Z, a-z, 0-9, '_.:-'"
        )
    return value


def check_preset(value: str | None) -> None:
    """An encoder preset, passed to the encoder as one argument."""
    if value is not None and not _PRESET.fullmatch(value):
        raise InvalidSpec("preset", f"{value[:80]!r} must be 1-{MAX_PRESET} of A-Z a-z 0-9 _ . -")


def check_spec_strings(scenario: str, source: str, destination: str, prompt: str) -> None:
    """The generic bounds of a spec's strings (their meaning is checked by ``events.spec``)."""
    check_text(scenario, "scenario", MAX_SCENARIO)
    check_text(source, "input", MAX_LOCATION)
    check_text(destination, "output", MAX_LOCATION)
    check_text(prompt, "approval_prompt", lines=True)


def nesting(data: bytes | str) -> int:
    """How deeply the JSON in ``data`` nests arrays and objects (strings skipped)."""
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    depth = deepest = 0
    for token in _BRACKETS.finditer(text):
        char = token.group()
        if char in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif char in ("]", "}"):
            depth -= 1
    return deepest


_BRACKETS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def check_nesting(data: bytes | str, field: str = "spec") -> None:
    """Refuse JSON nested deeper than ``MAX_NESTING`` before a decoder recurses into it."""
    if nesting(data) > MAX_NESTING:
        raise InvalidSpec(field, f"JSON nested deeper than {MAX_NESTING} levels")
