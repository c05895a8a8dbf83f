"""Reading the dead-letter stream: its bounds, and stored letters one message get at a time.

Letters are read with the stream's ``STREAM.MSG.GET`` API, whose answer carries headers and
payload base64 in JSON: ffrtmp parses the headers itself (``events.deadletter``), so a letter
with headers that are not UTF-8, or no headers at all, is listed like any other. The stream is
small and bounded, so a get per letter is cheap enough for a listing and for the exporter's
incremental read. A farm set up before the stream existed answers ``None`` for its bounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError

from events.deadletter import DeadLetter, Stored, read_letter
from events.errors import FfrtmpError
from events.natserrors import unavailable
from events.streams import SETUP_HINT
from events.subjects import Subjects, js_api
from ffrtmp.client.conn import Conn

TIMEOUT_S: Final = 5.0
CONCURRENT_GETS: Final = 32  # requests in flight at once: a listing, not a flood


class Bounds(msgspec.Struct, frozen=True):
    """The stream's first and last sequences and how many letters it holds."""

    first: int
    last: int
    count: int


class _ApiError(msgspec.Struct, frozen=True):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Answer(msgspec.Struct, frozen=True):
    message: Stored | None = None
    error: _ApiError | None = None


def missing_line(subjects: Subjects) -> str:
    """The one line a reader shows on a farm set up before dead letters were stored."""
    return f"no dead-letter stream {subjects.dead_letter_stream} on this farm yet: {SETUP_HINT}"


async def bounds(nc: NatsClient, subjects: Subjects) -> Bounds | None:
    """The stream's bounds, or None when it does not exist (a farm set up before it)."""
    try:
        info = await nc.jetstream(timeout=TIMEOUT_S).stream_info(subjects.dead_letter_stream)
    except NotFoundError:  # acted on: an older farm, told apart from an outage
        return None
    state = info.state
    return Bounds(first=state.first_seq, last=state.last_seq, count=state.messages)


async def letter(nc: NatsClient, subjects: Subjects, seq: int) -> DeadLetter | None:
    """The letter at ``seq``; None when the stream no longer holds it (aged out or cut)."""
    api = js_api("STREAM", "MSG", "GET", subjects.dead_letter_stream)
    reply = await nc.request(api, msgspec.json.encode({"seq": seq}), timeout=TIMEOUT_S)
    try:
        answer = msgspec.json.decode(reply.data, type=_Answer)
    except msgspec.DecodeError as exc:
        raise FfrtmpError(f"dead letter {seq}: the server's answer does not decode") from exc
    if answer.message is None:
        return None  # 10037: no message at this sequence
    return read_letter(subjects, answer.message, _epoch(answer.message.time))


def _epoch(text: str) -> float:
    """The server's RFC 3339 time (nanoseconds) as epoch seconds; 0 when it does not parse."""
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


async def letters(nc: NatsClient, subjects: Subjects, seqs: Sequence[int]) -> list[DeadLetter]:
    """The letters at these sequences that the stream still holds, in order."""
    found: list[DeadLetter] = []
    for start in range(0, len(seqs), CONCURRENT_GETS):
        chunk = seqs[start : start + CONCURRENT_GETS]
        got = await asyncio.gather(*(letter(nc, subjects, seq) for seq in chunk))
        found += [one for one in got if one is not None]
    return found


async def latest(conn: Conn, count: int) -> list[DeadLetter]:
    """The last ``count`` letters, oldest first; a farm without the stream is one line."""
    with unavailable(conn.where.url, "cannot read dead letters"):
        known = await bounds(conn.nc, conn.subjects)
        if known is None:
            raise FfrtmpError(missing_line(conn.subjects))
        if known.count == 0 or count <= 0:
            return []
        start = max(known.first, known.last - count + 1)
        return await letters(conn.nc, conn.subjects, range(start, known.last + 1))
