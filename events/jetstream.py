"""The event store that ships: the ``EventStore`` contract on a NATS JetStream stream.

This is the I/O edge of ``events``: everything else reads and writes the log through it. It
publishes with its own reply inbox and collects acknowledgements by position, so ``append_many``
pipelines thousands of appends per round trip and one refused append never stalls the others
(nats-py's ``publish_async`` raises inside its reply handler on an API error and leaves that
future pending forever). NATS errors are translated here, with ``raise ... from``:

    nats / JetStream                         ffrtmp
    err_code 10071, 10164 (wrong last seq)   ConcurrencyConflict
    an atomic batch refused                  BatchFailed
    no connection, no reply, no stream       StoreUnavailable
    a subject the client refuses             FfrtmpError (a refusal, never an outage)
    any other refusal                        FfrtmpError

Measured on nats-server 2.15 (file stream, ``sync_interval: always``): an atomic batch commit
costs about 3 ms against 0.5 ms for one append, and ``load`` of a short history by a direct-get
batch takes about 1 ms, half an ordered consumer's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from types import TracebackType
from typing import Final, NamedTuple, Self

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from events import subjects as wire
from events.admit import read_event
from events.base import SetAside
from events.codec import Decoded, encode
from events.connection import NatsOptions, open_nats
from events.errors import (
    BatchFailed,
    ConcurrencyConflict,
    FfrtmpError,
    ForgedDuplicate,
    StoreUnavailable,
)
from events.natserrors import store_boundary
from events.reader import read_forever, read_to_end
from events.redact import redact
from events.store import Append, Loaded
from events.streams import DEFAULT_LEASE_TTL_S, SETUP_HINT, ensure_streams
from events.subjects import Subjects

_log = logging.getLogger(__name__)

LOG_SET_ASIDE: Final = 100
"""Set-aside messages logged one by one; past that, every hundredth (a flood stays readable)."""
DIRECT_BATCH: Final = 1000
"""Messages per direct-get request when loading a job; more are fetched in further requests."""
_NO_RESPONDERS: Final = "503"
_END_OF_BATCH: Final = "204"
_NOT_FOUND: Final = "404"
_CONFLICTS: Final = frozenset({wire.ERR_WRONG_LAST_SEQUENCE, wire.ERR_WRONG_LAST_SEQUENCE_CONSTANT})
_ACTUAL: Final = re.compile(r"wrong last sequence: (\d+)")


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Duplicate(NamedTuple):
    """An acknowledgement that says the id was stored before, at ``seq``: to be checked."""

    seq: int


class _PubAck(msgspec.Struct):
    """JetStream's answer to a publish: a sequence, or an error; ``count`` for a batch."""

    seq: int = 0
    duplicate: bool = False
    count: int = 0
    error: _ApiError | None = None


_ACK: Final = msgspec.json.Decoder(_PubAck)


class _Replies:
    """Replies to one pipelined publish, kept by position; ``done`` resolves on the last."""

    __slots__ = ("done", "left", "msgs")

    def __init__(self, count: int) -> None:
        self.msgs: list[Msg | None] = [None] * count
        self.left = count
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def put(self, index: int, msg: Msg) -> None:
        if self.msgs[index] is None:
            self.msgs[index] = msg
            self.left -= 1
            if not self.left and not self.done.done():
                self.done.set_result(None)


class JetStreamEventStore:
    """``EventStore`` on the ``<PREFIX>_EVENTS`` stream of one NATS connection."""

    def __init__(self, nc: NatsClient, subjects: Subjects, *, timeout_s: float = 5.0) -> None:
        """Wrap a connected client; ``start`` (or ``connect``) opens the reply inbox."""
        self._nc = nc
        self._js = nc.jetstream(timeout=timeout_s)
        self.subjects = subjects
        self._stream = subjects.events_stream
        self._timeout = timeout_s
        self._url = redact(str(nc.connected_url.geturl())) if nc.connected_url else "?"
        self._inbox = f"{nc.new_inbox()}."
        self._calls: dict[str, _Replies] = {}
        self._gets: dict[str, asyncio.Queue[Msg]] = {}
        self._ids = map(str, itertools.count())
        self._owns = False
        self.set_aside = 0
        """Messages read here that no reader applies (``events.admit``), counted once each."""
        self._set_aside_upto = 0  # the highest such sequence counted and logged

    @classmethod
    async def connect(
        cls,
        url: str | NatsOptions,
        subjects: Subjects | None = None,
        *,
        timeout_s: float = 5.0,
        ensure: bool = False,
        lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
    ) -> Self:
        """Connect and check the events stream; ``ensure`` runs the setup step first (tests).

        ``url`` is a URL (or seed list) or full ``NatsOptions`` (credentials, TLS). Unreachable,
        refused or too old a server: one ``FfrtmpError`` line naming the URL, password hidden.
        """
        subjects = subjects or Subjects()
        options = url if isinstance(url, NatsOptions) else NatsOptions(url=url)
        nc = await open_nats(options, error_cb=_log_error)
        store = cls(nc, subjects, timeout_s=timeout_s)
        store._url, store._owns = options.shown, True
        try:
            await store.start(ensure=ensure, lease_ttl_s=lease_ttl_s)
        except BaseException:
            await nc.close()
            raise
        return store

    @property
    def nc(self) -> NatsClient:
        """The connection, for the other subjects a service of the log uses (work, heartbeats)."""
        return self._nc

    async def start(
        self, *, ensure: bool = False, lease_ttl_s: float = DEFAULT_LEASE_TTL_S
    ) -> None:
        """Open the reply inbox and check that the events stream exists (``ensure``: setup)."""
        with self._boundary():
            if ensure:
                await ensure_streams(self._js, self.subjects, lease_ttl_s=lease_ttl_s)
            await self._js.stream_info(self._stream)
            await self._nc.subscribe(f"{self._inbox}*", cb=self._on_reply)

    async def close(self) -> None:
        """Close the connection if this store opened it."""
        if self._owns and not self._nc.is_closed:
            await self._nc.close()

    async def __aenter__(self) -> Self:
        """The store itself; it is already connected."""
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close it."""
        await self.close()

    # writing

    async def append(self, item: Append) -> int:
        """Store one event; return its stream sequence."""
        result = (await self.append_many([item]))[0]
        if isinstance(result, Exception):
            raise result
        return result

    async def append_many(self, items: Sequence[Append]) -> list[int | Exception]:
        """Publish every item, then gather the acknowledgements; per-item seq or error."""
        if not items:
            return []
        msgs = await self._request_all([(item, None) for item in items], len(items))
        results = [self._outcome(item, msg) for item, msg in zip(items, msgs, strict=True)]
        for i, result in enumerate(results):
            if isinstance(result, ConcurrencyConflict):
                results[i] = await self._dedup_or(items[i], result)
            elif isinstance(result, _Duplicate):
                results[i] = await self._own(items[i], result.seq)
        return [result.seq if isinstance(result, _Duplicate) else result for result in results]

    async def append_batch(self, items: Sequence[Append]) -> list[int]:
        """Store all of ``items`` as one atomic batch, or none of them (``BatchFailed``).

        The server checks every item's expected sequence against the log as it was before the
        batch, and refuses a batch holding a ``msg_id`` it has seen (no dedup inside batches).
        Only the commit asks for a reply: the others would each get an empty one.
        """
        if not items:
            return []
        batch = uuid.uuid4().hex
        last = len(items)
        tagged = [(item, _batch_headers(batch, i, last)) for i, item in enumerate(items, 1)]
        (msg,) = await self._request_all(tagged, 1)
        ack = self._decode(msg)
        if ack.error is not None:
            raise BatchFailed(f"{ack.error.description} (err_code {ack.error.err_code})")
        return list(range(ack.seq - ack.count + 1, ack.seq + 1))

    async def _request_all(
        self, tagged: Sequence[tuple[Append, dict[str, str] | None]], replies: int
    ) -> list[Msg | None]:
        """Publish each item, the last ``replies`` asking for an acknowledgement; gather them.

        A reply missing at the deadline stays None: its append may or may not be stored.
        """
        call = next(self._ids)
        pending = self._calls[call] = _Replies(replies)
        first_reply = len(tagged) - replies
        try:
            with self._boundary():
                for i, (item, extra) in enumerate(tagged):
                    reply = f"{self._inbox}{call}_{i - first_reply}" if i >= first_reply else ""
                    await self._publish(item, reply, extra)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout):
                    await pending.done
        finally:
            del self._calls[call]
        return pending.msgs

    async def _publish(self, item: Append, reply: str, extra: dict[str, str] | None) -> None:
        headers = {wire.MSG_ID: item.msg_id}
        if item.expected is not None:
            headers[wire.EXPECTED_LAST_SUBJECT_SEQ] = str(item.expected)
            if item.expected_subject is not None:
                headers[wire.EXPECTED_LAST_SUBJECT_SEQ_SUBJECT] = item.expected_subject
        if extra:
            headers.update(extra)
        await self._nc.publish(item.subject, encode(item.event), reply=reply, headers=headers)

    async def _on_reply(self, msg: Msg) -> None:
        """Route a reply on our inbox: an acknowledgement by position, or a direct-get message."""
        call, _, index = msg.subject[len(self._inbox) :].partition("_")
        if index:
            replies = self._calls.get(call)
            if replies is not None:
                replies.put(int(index), msg)
        elif (queue := self._gets.get(call)) is not None:
            queue.put_nowait(msg)

    def _outcome(self, item: Append, msg: Msg | None) -> int | _Duplicate | Exception:
        """The sequence an acknowledgement gives (marked when a duplicate), or its error."""
        try:
            ack = self._decode(msg)
        except StoreUnavailable as exc:
            return exc
        if ack.error is None:
            return _Duplicate(ack.seq) if ack.duplicate else ack.seq
        return self._refusal(item, ack.error)

    async def _own(self, item: Append, seq: int) -> int | Exception:
        """A duplicate's sequence if the message there is on ``item``'s subject, else forged.

        The server dedups across the stream: a message under this id on another subject (a
        writer that stored an id another will use) means this append was not stored at all.
        """
        msgs, _ = await self._direct_batch(item.subject, seq)
        if msgs and _seq(msgs[0]) == seq:
            return seq
        return ForgedDuplicate(item.subject, item.msg_id, seq, "")

    def _decode(self, msg: Msg | None) -> _PubAck:
        if msg is None:
            hint = f"no acknowledgement in {self._timeout} s; retry with the same msg_id"
            raise StoreUnavailable(self._url, hint)
        if not msg.data and msg.headers and msg.headers.get(wire.STATUS) == _NO_RESPONDERS:
            raise StoreUnavailable(self._url, f"no stream stores {self.subjects.all_events}")
        return _ACK.decode(msg.data)

    def _refusal(self, item: Append, error: _ApiError) -> FfrtmpError:
        if error.err_code in _CONFLICTS:
            found = _ACTUAL.search(error.description)
            actual = int(found.group(1)) if found else None
            pattern = item.expected_subject or item.subject
            return ConcurrencyConflict(pattern, item.expected or 0, actual)
        return FfrtmpError(f"append to {item.subject} refused: {error.description}")

    async def _dedup_or(self, item: Append, conflict: ConcurrencyConflict) -> int | Exception:
        """The sequence ``item.msg_id`` was stored under after ``expected``, else the conflict.

        The server checks the expected sequence before dedup, so a retried append that was
        stored the first time conflicts with itself; the contract calls that a duplicate.
        """
        for msg in await self._direct(conflict.subject, conflict.expected + 1):
            if msg.headers and msg.headers.get(wire.MSG_ID) == item.msg_id:
                if _subject(msg) != item.subject:  # stored by another writer under our id
                    return ForgedDuplicate(item.subject, item.msg_id, _seq(msg), _subject(msg))
                return _seq(msg)
        return conflict

    # reading

    async def load(self, job: str) -> Loaded:
        """One job's events, in order, by direct-get batches on its subjects."""
        msgs = await self._direct(self.subjects.job_events(job), 1)
        events = [(_seq(msg), self._read(_seq(msg), _subject(msg), msg.data)) for msg in msgs]
        return Loaded(events=events, last_seq=events[-1][0] if events else 0)

    async def messages(self, subject: str, start: int = 1) -> list[tuple[int, str, bytes]]:
        """Every stored message on ``subject`` (wildcards allowed) from ``start``, as of now.

        Sequence, stored subject and payload, by direct-get batches: no consumer is created, so
        a reader asking many times a second (an API's decision waits) leaves nothing behind on
        the server, whose streams take at most 1,000 consumers.
        """
        return [(_seq(msg), _subject(msg), msg.data) for msg in await self._direct(subject, start)]

    async def _direct(self, subject: str, start: int) -> list[Msg]:
        """Every stored message on ``subject`` from ``start``, by direct-get batches."""
        found: list[Msg] = []
        while True:
            msgs, pending = await self._direct_batch(subject, start)
            found += msgs
            if not pending or not msgs:
                return found
            start = _seq(msgs[-1]) + 1

    async def _direct_batch(self, subject: str, start: int) -> tuple[list[Msg], int]:
        """One direct-get batch request: its messages, and how many more match after them."""
        call = f"g{next(self._ids)}"
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._gets[call] = queue
        request = {"seq": start, "next_by_subj": subject, "batch": DIRECT_BATCH}
        msgs: list[Msg] = []
        try:
            with self._boundary():
                api = f"$JS.API.DIRECT.GET.{self._stream}"
                await self._nc.publish(api, msgspec.json.encode(request), f"{self._inbox}{call}")
                while True:
                    async with asyncio.timeout(self._timeout):
                        msg = await queue.get()
                    status = msg.headers.get(wire.STATUS) if msg.headers else None
                    if status is not None:
                        return msgs, self._end_of_batch(status, msg)
                    msgs.append(msg)
        finally:
            del self._gets[call]

    def _end_of_batch(self, status: str, msg: Msg) -> int:
        if status == _END_OF_BATCH:
            return int((msg.headers or {}).get(wire.NUM_PENDING, "0"))
        if status == _NOT_FOUND:
            return 0
        if status == _NO_RESPONDERS:
            raise StoreUnavailable(self._url, f"stream {self._stream} does not answer direct gets")
        raise FfrtmpError(f"direct get on {self._stream} failed: status {status}")

    def replay(
        self, from_seq: int = 1, *, subject: str | None = None
    ) -> AsyncIterator[tuple[int, Decoded]]:
        """Every event from ``from_seq`` up to the stream's last sequence as of the call.

        ``subject`` (wildcards allowed) reads only what a reader needs, e.g. the jobs' events.
        """
        wanted = subject or self.subjects.all_events
        return self._decoded(read_to_end(self._nc, self._stream, wanted, from_seq))

    def follow(self, from_seq: int = 1) -> AsyncIterator[tuple[int, Decoded]]:
        """Every event from ``from_seq`` on, waiting for new ones."""
        return self._decoded(
            read_forever(self._nc, self._stream, self.subjects.all_events, from_seq)
        )

    async def _decoded(
        self, read: AsyncGenerator[tuple[int, str, bytes], None]
    ) -> AsyncIterator[tuple[int, Decoded]]:
        """Decode a raw read, with NATS errors translated and the read closed however it ends."""
        with self._boundary():
            async with contextlib.aclosing(read) as items:
                async for seq, subject, data in items:
                    yield seq, self._read(seq, subject, data)

    def _read(self, seq: int, subject: str, data: bytes) -> Decoded:
        """One stored message through the one door; a set-aside one counted, logged once."""
        event = read_event(subject, data)
        if isinstance(event, SetAside) and seq > self._set_aside_upto:
            self._set_aside_upto = seq  # reads go forward; a later load of a job re-reads quietly
            self.set_aside += 1
            if self.set_aside <= LOG_SET_ASIDE or self.set_aside % LOG_SET_ASIDE == 0:
                _log.warning(
                    "event %d on %s set aside (%d so far), never applied: %s",
                    seq,
                    subject,
                    self.set_aside,
                    event.reason,
                )
        return event

    async def last_seq(self) -> int:
        """The events stream's last sequence (0 when empty)."""
        with self._boundary():
            info = await self._js.stream_info(self._stream)
        return int(info.state.last_seq)

    def _boundary(self) -> contextlib.AbstractContextManager[None]:
        """NATS failures as ``StoreUnavailable`` / ``FfrtmpError``, once (``events.natserrors``)."""
        missing = f"stream {self._stream} does not exist: {SETUP_HINT}"
        return store_boundary(self._url, missing=missing, timeout_s=self._timeout)


def _seq(msg: Msg) -> int:
    """The stream sequence of a direct-get reply."""
    return int((msg.headers or {})[wire.SEQUENCE])


def _subject(msg: Msg) -> str:
    """The subject a direct-get reply's message was stored on."""
    return (msg.headers or {}).get(wire.STORED_SUBJECT, "")


def _batch_headers(batch: str, index: int, last: int) -> dict[str, str]:
    headers = {wire.BATCH_ID: batch, wire.BATCH_SEQUENCE: str(index)}
    if index == last:
        headers[wire.BATCH_COMMIT] = "1"
    return headers


async def _log_error(exc: Exception) -> None:
    """nats-py reports connection trouble here; reconnects handle it, so log and go on."""
    _log.warning("nats: %s", redact(str(exc)))
