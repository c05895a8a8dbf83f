"""The leader lease: one scheduler decides, a standby takes over within the lease time.

An I/O edge of the scheduler service. The lease is one key, ``leader``, in the JetStream KV
bucket ``<PREFIX>_SCHEDULER_LEASE``, whose max age is the lease time (``ttl_s``): the server
expires a dead leader's key on its own, so nobody has to detect the death. Every write is a
compare-and-set on the key's last revision, so two candidates never both win, and a leader
whose key expired or was taken cannot renew it (fencing). The caller renews every ``ttl_s / 3``,
which survives two lost renewals; a clean shutdown releases, and the standby takes over at once.
``acquire`` and ``keep`` are those loops: a candidate waits in ``acquire`` until it leads, and a
leader leads for as long as ``keep`` runs.

``held`` is also bounded by the local clock: it turns False ``ttl_s`` after the start of the
last write the server confirmed, which is no later than the server expires that write. A leader
cut off from the server therefore stops deciding before a standby can start; optimistic
concurrency on the event log makes any remaining overlap harmless.

nats-py's ``KeyValue.create`` covers the three ways a key can be free: absent (expected last
revision 0), aged out (history 1 and no limit markers leave the subject empty, so 0 again), and
deleted (0 fails on the delete marker; nats-py then reads the marker and retries with its
revision). Two gaps are handled here: the key expiring between nats-py's failed write and its
read surfaces as ``KeyNotFoundError`` (a miss this time), and the bucket must not use limit
markers (``limit_marker_ttl``): nats-py does not recognise a server-placed marker as a deletion,
so ``create`` would report the key as held until the marker aged out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Final

import msgspec
from nats.js.client import JetStreamContext
from nats.js.errors import (
    APIError,
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from events import subjects as wire
from events.aio import raise_if_cancelling
from events.errors import FfrtmpError, InvalidSpec, MalformedMessage
from events.natserrors import jetstream_boundary
from events.streams import SETUP_HINT
from events.subjects import Subjects

_log = logging.getLogger(__name__)

LEADER_KEY: Final = "leader"
"""The bucket's one key: whoever holds it decides."""
_CONFLICTS: Final = frozenset({wire.ERR_WRONG_LAST_SEQUENCE, wire.ERR_WRONG_LAST_SEQUENCE_CONSTANT})


class Claim(msgspec.Struct, frozen=True, kw_only=True):
    """The lease's value: who holds it and since when (wall clock, for people reading it)."""

    holder: str
    acquired_at: float
    renewed_at: float


# JSON, not msgpack: `nats kv get <bucket> leader` then shows who leads.
_ENCODER: Final = msgspec.json.Encoder()
_DECODER: Final = msgspec.json.Decoder(Claim)


class Lease:
    """One candidate's view of the lease; call ``open`` first."""

    def __init__(
        self, js: JetStreamContext, subjects: Subjects, holder: str, *, ttl_s: float = 5.0
    ) -> None:
        """Name the candidate; ``ttl_s`` is the lease time it expects (the bucket's wins)."""
        if not ttl_s > 0:
            raise InvalidSpec("lease ttl", f"{ttl_s} s: use a positive number of seconds")
        self._js = js
        self._subjects = subjects
        self._bucket = subjects.lease_bucket
        self._holder = holder
        self._ttl = ttl_s
        self._kv: KeyValue | None = None
        self._revision: int | None = None
        self._acquired_at = 0.0
        self._confirmed_at = -math.inf  # monotonic start of the last confirmed write

    @property
    def held(self) -> bool:
        """Whether we hold the lease: our last write stands and is younger than the ttl."""
        return self._revision is not None and time.monotonic() - self._confirmed_at < self._ttl

    @property
    def ttl_s(self) -> float:
        """The lease time: the bucket's max age once opened."""
        return self._ttl

    async def open(self) -> None:
        """Bind the bucket the setup step made and adopt its ttl; missing: one line."""
        with self._boundary("open"):
            try:
                self._kv = await self._js.key_value(self._bucket)
            except (BucketNotFoundError, NotFoundError):  # acted on: the setup has not run
                raise FfrtmpError(
                    f"lease bucket {self._bucket} does not exist: {SETUP_HINT}"
                ) from None
            self._adopt_ttl((await self._kv.status()).ttl)

    async def try_acquire(self) -> bool:
        """Take the lease if it is free, renew it if ours; False while someone else holds it."""
        if self._revision is not None and await self.renew():
            return True
        started, now = time.monotonic(), time.time()
        with self._boundary("acquire"):
            try:
                revision = await self._store.create(LEADER_KEY, self._value(now))
            except KeyWrongLastSequenceError:  # acted on: held, perhaps by us before a restart
                return await self._reclaim()
            except KeyNotFoundError:
                return False  # it aged out between nats-py's write and read: free next time
        self._confirm(revision, started, now)
        return True

    async def renew(self) -> bool:
        """Extend our lease; False (and no longer held) if it expired or changed under us."""
        if self._revision is None:
            return False
        started = time.monotonic()
        with self._boundary("renew"):
            try:
                revision = await self._store.update(
                    LEADER_KEY, self._value(self._acquired_at), last=self._revision
                )
            except KeyWrongLastSequenceError:  # acted on: expired or taken, so we are fenced
                self._revision = None
                return False
        self._confirm(revision, started, self._acquired_at)
        return True

    async def release(self) -> None:
        """Delete the key if it is still ours, so a standby takes over at once."""
        if self._revision is None:
            return
        revision, self._revision = self._revision, None
        with self._boundary("release"):
            try:
                await self._store.delete(LEADER_KEY, last=revision)
            except APIError as exc:  # acted on: a conflict means it is no longer ours
                if exc.err_code not in _CONFLICTS:
                    raise  # else it was no longer ours: nothing to release

    async def holder(self) -> str | None:
        """Who holds the lease now, or None."""
        current = await self._read()
        return None if current is None else current[0].holder

    # internals

    @property
    def _store(self) -> KeyValue:
        if self._kv is None:
            raise FfrtmpError("the scheduler lease is not open: call open() first")
        return self._kv

    def _value(self, acquired_at: float) -> bytes:
        claim = Claim(holder=self._holder, acquired_at=acquired_at, renewed_at=time.time())
        return _ENCODER.encode(claim)

    def _confirm(self, revision: int, started: float, acquired_at: float) -> None:
        self._revision, self._confirmed_at, self._acquired_at = revision, started, acquired_at

    async def _reclaim(self) -> bool:
        """Someone holds the key: if it is our own id (a restart, a lost reply), take it back."""
        started = time.monotonic()
        current = await self._read()
        if current is None or current[0].holder != self._holder:
            self._revision = None
            return False
        claim, revision = current
        try:
            revision = await self._store.update(
                LEADER_KEY, self._value(claim.acquired_at), last=revision
            )
        except KeyWrongLastSequenceError:  # acted on: it changed since we read it
            return False
        self._confirm(revision, started, claim.acquired_at)
        return True

    async def _read(self) -> tuple[Claim, int] | None:
        with self._boundary("read"):
            try:
                entry = await self._store.get(LEADER_KEY)
            except KeyNotFoundError:  # absent, deleted or aged out
                return None
        data = entry.value or b""
        try:
            claim = _DECODER.decode(data)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise MalformedMessage(f"lease {self._bucket}/{LEADER_KEY}: {exc}", data) from exc
        return claim, entry.revision or 0

    def _adopt_ttl(self, ttl: float | None) -> None:
        if not ttl:
            raise FfrtmpError(
                f"lease bucket {self._bucket} has no max age, so a dead leader would hold it "
                f"forever: delete it (`nats kv del {self._bucket}`) and run `ffrtmp streams create`"
            )
        if not math.isclose(ttl, self._ttl, rel_tol=1e-6):
            _log.warning(
                "lease bucket %s has ttl %.3g s, not %.3g s: using the bucket's",
                self._bucket,
                ttl,
                self._ttl,
            )
            self._ttl = ttl

    def _boundary(self, action: str) -> contextlib.AbstractContextManager[None]:
        """Translate NATS failures into ``StoreUnavailable`` / ``FfrtmpError``."""
        return jetstream_boundary(self._js, "lease", f"lease {self._bucket}", action)


async def acquire(lease: Lease) -> None:
    """Wait until this process holds the lease, trying every third of its time to live.

    Opening the bucket is retried like the rest: a server or cluster node going away while
    a standby waits must not end the scheduler.
    """
    opened = False
    while True:
        try:
            if not opened:
                await lease.open()
                opened = True
            if await lease.try_acquire():
                return
        except FfrtmpError as exc:  # the lease's calls translate NATS failures
            raise_if_cancelling()
            _log.warning("lease unreachable: %s", exc)
        await asyncio.sleep(lease.ttl_s / 3)


async def keep(lease: Lease) -> None:
    """Renew every third of the lease time; return when the lease is lost or lapses."""
    while True:
        await asyncio.sleep(lease.ttl_s / 3)
        try:
            if not await lease.renew():
                return
        except FfrtmpError as exc:  # the lease's calls translate NATS failures
            raise_if_cancelling()
            _log.warning("lease renewal failed: %s", exc)
            if not lease.held:  # lapsed by our own clock: a standby may lead now
                return
