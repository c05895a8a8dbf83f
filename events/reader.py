"""Raw reads of a JetStream stream: ``(seq, subject, bytes)`` in order, as cheaply as can be.

This is the read edge under ``replay`` and ``follow``: an ephemeral push consumer (no acks,
flow control, idle heartbeats) created through the JetStream API, delivering to an inbox whose
messages skip nats-py's per-message machinery. nats-py's parser hands every message to
``Client._process_msg``; for our inboxes a small router takes it there and keeps only the
stream sequence, parsed from the ``$JS.ACK.<stream>.<consumer>.<n>.<sseq>.<dseq>.<ts>.<left>``
reply subject, the subject it was stored on (the writer's token: see ``events.admit``) and the
payload bytes: no header parsing, no ``Msg``, no queue, no task switch.
Where ``_process_msg`` does not look as expected (another nats-py), the same consumer is read
through a public ``subscribe`` callback, slower but equal in behaviour.

It does what an ordered consumer does: a gap in the consumer's delivery sequence, a heartbeat
that says a message went missing, a status such as "consumer deleted", or silence for three
heartbeats drop the consumer and recreate it from the last sequence delivered. Flow-control
requests are answered once the messages before them have been taken, so a slow reader holds
the server back instead of buffering the stream. Closing the iterator unsubscribes and deletes
the consumer.

Measured reading 300k stored events of 115 to 410 bytes of JSON plus the store's three headers
(``Nats-Msg-Id`` and the expected sequence pair) on a noisy 2-core machine, Python 3.11,
nats-server 2.15.1; medians of interleaved rounds, ranges over several runs, messages/s:

    this path (router)                             180k - 290k
    nats-py ordered consumer, callback              66k - 111k   (parses every header)
    our push consumer via a public callback         86k - 115k   (the fallback here)
    a second raw TCP connection, own parser        290k - 450k   (needs its own auth, TLS,
                                                                  reconnects: not taken)
    batched direct gets, 4 requests in flight       37k -  42k
    nats-py pull ``fetch``                          25k -  28k

``BENCHMARKS.md`` has the replay figures with decode and fold.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from events import subjects as wire
from events.errors import FfrtmpError, StoreUnavailable
from events.natserrors import FAILURES, failing_as, url_of

IDLE_HEARTBEAT_S: Final = 5.0
"""How often an idle consumer says it is alive; three missed heartbeats recreate it."""
_MISSED_HEARTBEATS: Final = 3
_API_TIMEOUT_S: Final = 5.0
_CATCH_UP_PAUSE_S: Final = 0.05  # before reading again from a server behind the stream's leader
_INACTIVE_S: Final = 60.0  # the server drops a consumer nobody has read for this long
_ACK_PREFIX: Final = b"$JS.ACK."
_HEARTBEAT: Final = "100"
_PROCESS_MSG_ARGS: Final = ("sid", "subject", "reply", "data", "headers")
_NS: Final = 1_000_000_000

Item = tuple[int, str, bytes]
"""A stream sequence, the subject the message was stored on, and its payload."""


class _ApiError(msgspec.Struct):
    code: int = 0
    err_code: int = 0
    description: str = ""


class _Created(msgspec.Struct):
    name: str = ""
    num_pending: int = 0
    error: _ApiError | None = None


class _State(msgspec.Struct):
    last_seq: int = 0


class _StreamInfo(msgspec.Struct):
    state: _State = msgspec.field(default_factory=_State)
    error: _ApiError | None = None


class _StoredSeq(msgspec.Struct):
    seq: int = 0


class _Stored(msgspec.Struct):
    message: _StoredSeq | None = None
    error: _ApiError | None = None


_CREATED: Final = msgspec.json.Decoder(_Created)
_STORED: Final = msgspec.json.Decoder(_Stored)
_STREAM_INFO: Final = msgspec.json.Decoder(_StreamInfo)


def read_to_end(
    nc: NatsClient,
    stream: str,
    subject: str,
    from_seq: int = 1,
    *,
    heartbeat_s: float = IDLE_HEARTBEAT_S,
) -> AsyncGenerator[Item, None]:
    """Messages on ``subject`` from ``from_seq`` up to the stream's last sequence when it starts."""
    return _read(nc, _Request(stream, subject, heartbeat_s), from_seq, to_end=True)


def read_forever(
    nc: NatsClient,
    stream: str,
    subject: str,
    from_seq: int = 1,
    *,
    heartbeat_s: float = IDLE_HEARTBEAT_S,
) -> AsyncGenerator[Item, None]:
    """Messages on ``subject`` from ``from_seq`` on, waiting for new ones; never ends by itself."""
    return _read(nc, _Request(stream, subject, heartbeat_s), from_seq, to_end=False)


async def last_sequence(nc: NatsClient, stream: str) -> int:
    """The stream's last sequence, 0 when it is empty."""
    reply = await _api(nc, f"$JS.API.STREAM.INFO.{stream}", b"")
    info = _STREAM_INFO.decode(reply)
    _raise_for(nc, stream, info.error)
    return info.state.last_seq


async def _read(
    nc: NatsClient, request: _Request, from_seq: int, *, to_end: bool
) -> AsyncGenerator[Item, None]:
    """Read through one consumer after another, each starting where the last one broke.

    One generator frame per message on purpose: each layer of ``async for`` adds 100 to 170 ns
    a message, a third to a half of what parsing its reply subject costs.
    """
    end = await last_sequence(nc, request.stream) if to_end else None
    start = max(from_seq, 1)
    while end is None or start <= end:
        try:
            async with _open(nc, request, start) as feed:
                while not feed.done(start, end):
                    batch = await feed.next_batch(end)
                    for item in batch:
                        yield item
                    if batch:
                        start = batch[-1][0] + 1
        except _Broken:
            continue
        # Done by its consumer's count (a follow never is): trusted as far as the leader agrees.
        if end is None or feed.past_end or not await _stored_before(nc, request, start, end):
            return
        await asyncio.sleep(_CATCH_UP_PAUSE_S)  # its server is behind the leader: read on


async def _stored_before(nc: NatsClient, request: _Request, start: int, end: int) -> bool:
    """Whether the stream's leader holds a message on the subject from ``start`` up to ``end``.

    A consumer counts what is pending on its own server's copy of the stream: in a cluster that
    copy can be behind the leader (a node just restarted and catching up), and a read that
    trusted its "nothing pending" would end early, silently short. The leader answers here.
    """
    if start > end:
        return False
    payload = msgspec.json.encode({"seq": start, "next_by_subj": request.subject})
    reply = _STORED.decode(await _api(nc, f"$JS.API.STREAM.MSG.GET.{request.stream}", payload))
    if reply.error is not None:
        if reply.error.err_code == wire.ERR_NO_MESSAGE_FOUND:
            return False
        _raise_for(nc, request.stream, reply.error)
    return reply.message is not None and reply.message.seq <= end


class _Request(msgspec.Struct, frozen=True):
    """Where one consumer reads from."""

    stream: str
    subject: str
    heartbeat_s: float


class _Broken(Exception):
    """The consumer lost a message or went silent: recreate it from the last sequence."""


class _Feed:
    """What one push consumer delivered and nobody has taken yet, with its sequence checks."""

    __slots__ = (
        "_fc",
        "_items",
        "_nc",
        "_next_dseq",
        "_owed",
        "_silence_s",
        "_waiter",
        "broken",
        "heard",
        "past_end",
        "pending",
    )

    def __init__(self, nc: NatsClient, heartbeat_s: float) -> None:
        """An empty feed expecting delivery 1; ``pending`` is set once the consumer exists."""
        self._nc = nc
        self._items: list[Item] = []
        self._fc: list[str] = []  # flow-control replies owed once the items before them go
        self._owed: list[str] = []
        self._next_dseq = 1
        self._silence_s = heartbeat_s * _MISSED_HEARTBEATS
        self._waiter: asyncio.Future[None] | None = None
        self.broken = False
        self.heard = False
        self.past_end = False
        self.pending = -1  # messages left after the last delivered one, as the server said

    def created(self, pending: int) -> None:
        """The consumer exists with ``pending`` messages to deliver, unless some already came."""
        if self._next_dseq == 1:  # deliveries can overtake the API's reply
            self.pending = pending

    def on_data(self, reply: bytes, subject: str, data: bytes) -> None:
        """A stored message: keep it if it is the next delivery, else mark the consumer broken."""
        self.heard = True
        if self.broken:
            return
        numbers = _ack_numbers(reply)
        if numbers is None or numbers[1] != self._next_dseq:
            self._break()
            return
        self._next_dseq += 1
        self.pending = numbers[2]
        self._items.append((numbers[0], subject, data))
        self._wake()

    def on_control(self, reply: bytes, headers: Mapping[str, str]) -> None:
        """A flow-control request, a heartbeat, or a status that ends this consumer."""
        self.heard = True
        if reply:
            self._fc.append(reply.decode())
        elif headers.get(wire.STATUS) != _HEARTBEAT:
            self._break()  # e.g. 409 consumer deleted
        else:
            self._heartbeat(headers)
        self._wake()

    def on_raw(self, subject: bytes, reply: bytes, data: bytes, headers: bytes | None) -> None:
        """The router's entry: the message as nats-py's parser saw it."""
        if reply[:8] == _ACK_PREFIX:
            self.on_data(reply, subject.decode(errors="replace"), data)
        else:
            self.on_control(reply, _parse_headers(headers))

    async def on_msg(self, msg: Msg) -> None:
        """The public callback's entry, where the router cannot be installed."""
        if msg.reply.startswith("$JS.ACK."):
            self.on_data(msg.reply.encode(), msg.subject, msg.data)
        else:
            self.on_control(msg.reply.encode(), msg.headers or {})

    def close(self) -> None:
        """Take nothing more: what is still in flight is dropped."""
        self.broken = True
        self._items, self._fc = [], []

    def done(self, start: int, end: int | None) -> bool:
        """Whether a read up to ``end`` is complete once ``start`` is the next sequence wanted."""
        if end is None:
            return False
        return start > end or self.past_end or (self.pending == 0 and not self._items)

    async def next_batch(self, end: int | None) -> list[Item]:
        """What was delivered since the last call, none past ``end``; ``_Broken`` to recreate."""
        await self._answer(self._owed)
        while not self._items:
            await self._answer(self._take_fc())
            if self.broken:
                raise _Broken
            await self._wait()
        batch, self._items = self._items, []
        self._owed = self._take_fc()  # answered at the next call, when the batch is taken
        if end is not None and batch[-1][0] > end:
            self.past_end = True
            batch = [item for item in batch if item[0] <= end]
        return batch

    def _heartbeat(self, headers: Mapping[str, str]) -> None:
        stalled = headers.get(wire.CONSUMER_STALLED)
        if stalled:
            self._fc.append(stalled)
        last = headers.get(wire.LAST_CONSUMER)
        if last is not None and last.isdigit() and int(last) != self._next_dseq - 1:
            self._break()  # the tail went missing

    def _break(self) -> None:
        self.broken = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        """Until something arrives; silence for three heartbeats breaks the consumer."""
        self.heard = False
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._silence_s):
                await self._waiter
        except TimeoutError:
            if not self.heard:
                self._break()
        finally:
            self._waiter = None

    def _take_fc(self) -> list[str]:
        owed, self._fc = self._fc, []
        return owed

    async def _answer(self, owed: list[str]) -> None:
        for subject in owed:
            await self._nc.publish(subject)


@contextlib.asynccontextmanager
async def _open(nc: NatsClient, request: _Request, start: int) -> AsyncIterator[_Feed]:
    """A push consumer from ``start`` into a fresh feed; unsubscribed and deleted on the way out."""
    feed = _Feed(nc, request.heartbeat_s)
    inbox = nc.new_inbox()
    sub, detach = await _attach(nc, inbox, feed)
    name = ""
    try:
        name, pending = await _create(nc, request, start, inbox)
        feed.created(pending)
        yield feed
    finally:
        feed.close()
        # Shielded: a cancelled reader still unsubscribes and deletes its consumer.
        await asyncio.shield(_close(nc, sub, detach, request.stream, name))


async def _attach(
    nc: NatsClient, inbox: str, feed: _Feed
) -> tuple[Subscription, Callable[[], None]]:
    """Subscribe ``inbox`` into ``feed``: through the router when it fits, else a callback."""
    router = _router(nc)
    if router is None:
        sub = await nc.subscribe(inbox, cb=feed.on_msg, pending_msgs_limit=0)
        return sub, _nothing
    sub = await nc.subscribe(inbox)  # its queue stays empty: the router takes its messages
    sid = sub._id  # noqa: SLF001 -- nats-py names subscriptions by sid on the wire only
    router.routes[sid] = feed.on_raw

    def detach() -> None:
        router.routes.pop(sid, None)

    return sub, detach


def _nothing() -> None:
    """Nothing to undo."""


async def _create(nc: NatsClient, request: _Request, start: int, inbox: str) -> tuple[str, int]:
    """Create the consumer; its name and how many messages it has to deliver."""
    heartbeat_ns = int(request.heartbeat_s * _NS)
    config = {
        "deliver_subject": inbox,
        "deliver_policy": "by_start_sequence",
        "opt_start_seq": start,
        "filter_subject": request.subject,
        "ack_policy": "none",
        "max_deliver": 1,
        "flow_control": True,
        "idle_heartbeat": heartbeat_ns,
        "inactive_threshold": int(_INACTIVE_S * _NS),
        "mem_storage": True,
        "num_replicas": 1,
    }
    payload = msgspec.json.encode({"stream_name": request.stream, "config": config})
    reply = await _api(nc, f"$JS.API.CONSUMER.CREATE.{request.stream}", payload)
    created = _CREATED.decode(reply)
    _raise_for(nc, request.stream, created.error)
    return created.name, created.num_pending


async def _close(
    nc: NatsClient, sub: Subscription, detach: Callable[[], None], stream: str, name: str
) -> None:
    """Stop listening, then delete the consumer; a closed connection has nothing to clean."""
    try:
        with contextlib.suppress(*FAILURES):
            await sub.unsubscribe()
    finally:
        detach()  # only now: until the server stops sending, the closed feed drops what comes
    if name:
        with contextlib.suppress(FfrtmpError):
            await _api(nc, f"$JS.API.CONSUMER.DELETE.{stream}.{name}", b"")


async def _api(nc: NatsClient, subject: str, payload: bytes) -> bytes:
    """One JetStream API request; no answer is ``StoreUnavailable``."""
    with failing_as(
        lambda exc: StoreUnavailable(url_of(nc), f"{subject}: {type(exc).__name__} {exc}")
    ):
        msg = await nc.request(subject, payload, timeout=_API_TIMEOUT_S)
    return msg.data


def _raise_for(nc: NatsClient, stream: str, error: _ApiError | None) -> None:
    if error is None:
        return
    if error.err_code == wire.ERR_STREAM_NOT_FOUND:
        raise StoreUnavailable(
            url_of(nc), f"stream {stream} does not exist: `ffrtmp server` creates it"
        )
    raise FfrtmpError(f"JetStream refused a read of {stream}: {error.description}")


def _ack_numbers(reply: bytes) -> tuple[int, int, int] | None:
    """``(stream seq, delivery seq, pending)`` from a ``$JS.ACK`` subject, v1 or v2 layout."""
    tokens = reply.split(b".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<n>.<sseq>.<dseq>.<ts>.<pending>
        first = 5
    elif len(tokens) >= 11:  # $JS.ACK.<domain>.<account>.<stream>... and a random token
        first = 7
    else:
        return None
    try:
        return int(tokens[first]), int(tokens[first + 1]), int(tokens[first + 3])
    except ValueError:
        return None


def _parse_headers(raw: bytes | None) -> dict[str, str]:
    """A control message's headers; the status code of ``NATS/1.0 100 …`` under ``Status``."""
    if not raw:
        return {}
    first, *lines = raw.decode(errors="replace").split("\r\n")
    headers = {wire.STATUS: first[9:12]}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip()] = value.strip()
    return headers


# The router ---------------------------------------------------------------------------------

_Route = Callable[[bytes, bytes, bytes, bytes | None], None]
_ProcessMsg = Callable[[int, bytes, bytes, bytes, bytes | None], Awaitable[None]]


class _Router:
    """Stands in for ``nc._process_msg``: routed sids go straight to their feed, others on."""

    __slots__ = ("_next", "routes")

    def __init__(self, following: _ProcessMsg) -> None:
        self._next = following
        self.routes: dict[int, _Route] = {}

    async def __call__(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes | None
    ) -> None:
        route = self.routes.get(sid)
        if route is None:
            await self._next(sid, subject, reply, data, headers)
        else:
            route(subject, reply, data, headers)


def _router(nc: NatsClient) -> _Router | None:
    """The connection's router, installed on first use; None when nats-py is not as expected."""
    current = getattr(nc, "_process_msg", None)
    if isinstance(current, _Router):
        return current
    if current is None or not _looks_like_process_msg(current):
        return None
    router = _Router(current)
    nc._process_msg = router  # type: ignore[method-assign]  # noqa: SLF001
    return router


def _looks_like_process_msg(method: _ProcessMsg) -> bool:
    """Whether ``method`` is the coroutine ``(sid, subject, reply, data, headers)`` we wrap."""
    if not inspect.iscoroutinefunction(method):
        return False
    return tuple(inspect.signature(method).parameters) == _PROCESS_MSG_ARGS
