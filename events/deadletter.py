"""Dead letters: the headers a set-aside message carries, and how a reader makes sense of one.

A consumer that cannot use a message (it does not decode, or it kept conflicting) copies it to
``<prefix>.dlq.<source>`` with three headers: why (``Ffrtmp-Kind``), the reason in one line
(``Ffrtmp-Error``) and the subject it came on (``Ffrtmp-Subject``). The dead-letter stream keeps
what lands there for a while. Anyone may have written a dead letter on an open farm, so reading
one is total: headers that do not parse, bytes that are not UTF-8 and a missing header all give
a letter with ``?`` where the fact is missing, never an error. Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Final

import msgspec

from events.subjects import Subjects

KIND_HEADER: Final = "Ffrtmp-Kind"
"""Why it was set aside: an ``Aside`` value."""
ERROR_HEADER: Final = "Ffrtmp-Error"
"""The reason, on one line."""
SUBJECT_HEADER: Final = "Ffrtmp-Subject"
"""The subject it came on."""
SIZE_HEADER: Final = "Ffrtmp-Size"
"""The original payload's size, set only when the copy had to be cut to fit ``max_payload``."""

REASON_CHARS: Final = 200
"""An error header's length: one line a person reads, not the whole exception."""
KIND_CHARS: Final = 32
"""A kind header's length: a kind is one word."""
HEAD_BYTES: Final = 64
"""How much of the payload a listing shows."""
HEADER_ROOM: Final = 1024
"""Bytes left under ``max_payload`` for the headers when a payload must be cut."""
UNKNOWN: Final = "?"

CMD_SOURCE: Final = "cmd"
"""The scheduler's command intake (``<prefix>.dlq.cmd``)."""
AGENT_SOURCE: Final = "agent"
"""An agent's work consumer (``<prefix>.dlq.agent-<id>``)."""
_AGENT_DURABLE: Final = "agent-"


class Aside(StrEnum):
    """Why a message was set aside: counted apart, named in its dead letter."""

    MALFORMED = "malformed"  # it does not decode, or breaks a limit: it never will
    CONFLICTING = "conflicting"  # valid, but the job moved under every try: send it again


def headers(kind: Aside, reason: str, subject: str) -> dict[str, str]:
    """The headers of a dead letter: the reason cut to one short line."""
    why = " ".join(reason[:REASON_CHARS].split()) or UNKNOWN
    return {KIND_HEADER: kind.value, ERROR_HEADER: why, SUBJECT_HEADER: subject}


def fit(data: bytes, fields: dict[str, str], max_payload: int) -> tuple[bytes, dict[str, str]]:
    """The payload and headers to publish: a payload too big to copy whole is cut, its size kept.

    The message that failed fitted the server's limit; its copy adds headers, so it may not.
    """
    room = max(0, max_payload - HEADER_ROOM)
    if len(data) <= room:
        return data, fields
    return data[:room], {**fields, SIZE_HEADER: str(len(data))}


def source_of(subjects: Subjects, subject: str) -> str:
    """Which consumer set it aside: ``cmd``, ``agent``, another named source, or ``?``."""
    head = f"{subjects.prefix}.dlq."
    if not subject.startswith(head):
        return UNKNOWN
    token = subject[len(head) :]
    return AGENT_SOURCE if token.startswith(_AGENT_DURABLE) else token


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """One stored dead letter as a person reads it."""

    seq: int
    at: float  # when the stream stored it (epoch seconds), 0 when unknown
    subject: str  # the dead-letter subject (names the source)
    source: str
    kind: str
    error: str
    origin: str  # the subject it came on
    size: int  # the payload's size as it came (before any cut)
    head: str  # the first ``HEAD_BYTES`` bytes, undecodable bytes and control characters escaped


class Stored(msgspec.Struct, frozen=True):
    """A ``STREAM.MSG.GET`` answer's message: headers and payload base64, as the server sends."""

    subject: str = ""
    seq: int = 0
    time: str = ""
    hdrs: str = ""
    data: str = ""


def parse_headers(raw: bytes) -> dict[str, str]:
    """``NATS/1.0`` header block to a dict; lines that are not ``Name: value`` are skipped."""
    found: dict[str, str] = {}
    for line in raw.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if colon and name.strip():
            key = name.strip().decode("ascii", "replace")
            found.setdefault(key, value.strip().decode("utf-8", "replace"))
    return found


def read_letter(subjects: Subjects, stored: Stored, at: float) -> DeadLetter:
    """A dead letter from what the stream returned (stored at ``at``); unreadable becomes ``?``."""
    fields = parse_headers(_unbase64(stored.hdrs))
    data = _unbase64(stored.data)
    return DeadLetter(
        seq=stored.seq,
        at=at,
        subject=stored.subject,
        source=source_of(subjects, stored.subject),
        kind=_one_line(fields.get(KIND_HEADER, ""), KIND_CHARS) or UNKNOWN,
        error=_one_line(fields.get(ERROR_HEADER, ""), REASON_CHARS),
        origin=_one_line(fields.get(SUBJECT_HEADER, ""), REASON_CHARS),
        size=_size(fields.get(SIZE_HEADER), len(data)),
        head=_printable(data[:HEAD_BYTES].decode("utf-8", "backslashreplace")),
    )


def _unbase64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return b""


def _size(cut_from: str | None, stored: int) -> int:
    if cut_from is not None and cut_from.isdigit():
        return int(cut_from)
    return stored


def _one_line(text: str, limit: int) -> str:
    return _printable(" ".join(text[:limit].split()))


def _printable(text: str) -> str:
    """Control characters escaped: a letter shown on a terminal cannot drive it."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
