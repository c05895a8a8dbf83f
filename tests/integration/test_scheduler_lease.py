"""The leader lease against a real nats-server: one winner, renewal, hand-over, expiry, fencing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.client import JetStreamContext

from events.errors import FfrtmpError, InvalidSpec, StoreUnavailable
from events.streams import ensure_streams
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.lease import LEADER_KEY, Lease
from tests.waiting import wait_until

pytestmark = pytest.mark.anyio

SHORT_TTL_S = 1.0
DEADLINE_S = 15.0  # generous: expiry takes about SHORT_TTL_S; a slow CI box must not flake
POLL_S = 0.05

Connect = Callable[[], Awaitable[NatsClient]]
Candidate = Callable[..., Awaitable[Lease]]


@pytest.fixture
async def connect(nats_server: NatsServer) -> AsyncIterator[Connect]:
    """Open connections (one per candidate, like separate processes); all closed at the end."""
    opened: list[NatsClient] = []

    async def open_one() -> NatsClient:
        nc = await nats.connect(nats_server.url)
        opened.append(nc)
        return nc

    yield open_one
    for nc in opened:
        await nc.close()


@pytest.fixture
def candidate(connect: Connect, prefix: str) -> Candidate:
    """An opened lease for a holder id, on a connection of its own, under this test's prefix."""

    async def make(holder: str, ttl_s: float = 5.0) -> Lease:
        nc = await connect()
        if not made:  # the setup step, once: processes only bind to the bucket
            made.append(await ensure_streams(nc, Subjects(prefix)))
        lease = Lease(nc.jetstream(), Subjects(prefix), holder, ttl_s=ttl_s)
        await lease.open()
        return lease

    made: list[object] = []

    return make


async def test_first_acquirer_wins_and_the_second_sees_it(candidate: Candidate) -> None:
    """The first candidate takes the lease; the second is refused and sees who holds it."""
    a, b = await candidate("a"), await candidate("b")
    assert await a.try_acquire()
    assert not await b.try_acquire()
    assert a.held
    assert not b.held
    assert await b.holder() == "a"


async def test_renewing_keeps_the_lease(candidate: Candidate) -> None:
    """The holder renews (directly or by acquiring again) and keeps the lease."""
    a, b = await candidate("a"), await candidate("b")
    assert await a.try_acquire()
    for _ in range(3):
        assert await a.renew()
        assert await a.try_acquire()
        assert not await b.try_acquire()
    assert a.held
    assert await a.holder() == "a"


async def test_release_hands_over_at_once(candidate: Candidate) -> None:
    """After a release nobody holds the lease and the next candidate takes it at once."""
    a, b = await candidate("a"), await candidate("b")
    assert await a.try_acquire()
    await a.release()
    assert not a.held
    assert await b.holder() is None
    assert await b.try_acquire()
    assert await a.holder() == "b"
    assert not await a.renew()
    await a.release()  # no longer ours: a no-op that leaves b's lease alone
    assert await a.holder() == "b"


async def test_a_silent_holder_loses_the_lease_after_the_ttl(candidate: Candidate) -> None:
    """A holder that stops renewing loses the lease to a standby, and can no longer renew."""
    a, b = await candidate("a", SHORT_TTL_S), await candidate("b", SHORT_TTL_S)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    await wait_until(b.try_acquire, "b to acquire the lease", DEADLINE_S, poll_s=POLL_S)
    assert await b.holder() == "b"
    assert not a.held
    assert not await a.renew()
    assert not await a.try_acquire()
    assert await b.renew()


async def test_the_key_expires_on_its_own(candidate: Candidate) -> None:
    """The bucket's max age removes a dead leader's key without anyone deleting it."""
    a, b = await candidate("a", SHORT_TTL_S), await candidate("b", SHORT_TTL_S)
    assert await a.try_acquire()

    async def vacant() -> bool:
        return await b.holder() is None

    await wait_until(vacant, "the key to expire", DEADLINE_S, poll_s=POLL_S)
    assert not a.held


async def test_a_stale_holder_cannot_renew(
    candidate: Candidate, connect: Connect, prefix: str
) -> None:
    """Once someone else took the key, the old holder's renew fails: the lease fences it."""
    a, b = await candidate("a"), await candidate("b")
    assert await a.try_acquire()
    kv = await (await connect()).jetstream().key_value(Subjects(prefix).lease_bucket)
    await kv.delete(LEADER_KEY)  # a's key vanishes under it, as if it had expired
    assert await b.try_acquire()
    assert not await a.renew()
    assert not a.held
    assert not await a.try_acquire()
    assert await a.holder() == "b"


@pytest.mark.parametrize("start", ["absent", "deleted"])
async def test_concurrent_acquires_have_exactly_one_winner(
    candidate: Candidate, start: str
) -> None:
    """Two candidates racing for a free lease: exactly one wins, and it is the holder."""
    a, b = await candidate("a"), await candidate("b")
    if start == "deleted":
        previous = await candidate("c")
        assert await previous.try_acquire()
        await previous.release()
    for _ in range(5):  # later rounds start from the last winner's release
        won = await asyncio.gather(a.try_acquire(), b.try_acquire())
        assert sorted(won) == [False, True]
        winner, loser = (a, b) if won[0] else (b, a)
        assert winner.held
        assert not loser.held
        assert await loser.holder() == ("a" if won[0] else "b")
        await winner.release()


async def test_a_restarted_holder_takes_its_own_lease_back(candidate: Candidate) -> None:
    """A new process with the holder's id reclaims the lease; the old instance is fenced."""
    old = await candidate("a")
    assert await old.try_acquire()
    new = await candidate("a")
    assert await new.try_acquire()
    assert not await old.renew()
    assert await new.renew()


async def test_open_adopts_the_ttl_of_an_existing_bucket(candidate: Candidate) -> None:
    """A candidate configured with another ttl uses the bucket's, so all agree on the lease time."""
    first = await candidate("a", 5.0)
    second = await candidate("b", 2.0)
    assert first.ttl_s == second.ttl_s == 5.0


async def test_a_closed_connection_is_store_unavailable(connect: Connect, prefix: str) -> None:
    """NATS failures surface as our StoreUnavailable, not as nats-py errors."""
    nc = await connect()
    await ensure_streams(nc, Subjects(prefix))
    lease = Lease(nc.jetstream(), Subjects(prefix), "a")
    await lease.open()
    assert await lease.try_acquire()
    await nc.close()
    with pytest.raises(StoreUnavailable):
        await lease.renew()


async def test_the_value_names_the_holder(
    candidate: Candidate, connect: Connect, prefix: str
) -> None:
    """The key's value is readable JSON with the holder and its times."""
    a = await candidate("sched-a")
    assert await a.try_acquire()
    js: JetStreamContext = (await connect()).jetstream()
    entry = await (await js.key_value(Subjects(prefix).lease_bucket)).get(LEADER_KEY)
    assert entry.value is not None
    assert b'"holder":"sched-a"' in entry.value


async def test_a_bucket_without_expiry_is_refused(connect: Connect, prefix: str) -> None:
    """A lease bucket whose keys never expire would let a dead leader hold it forever."""
    js = (await connect()).jetstream()
    await js.create_key_value(bucket=Subjects(prefix).lease_bucket, history=1)
    with pytest.raises(FfrtmpError, match="no max age"):
        await Lease(js, Subjects(prefix), "a").open()


async def test_a_missing_bucket_names_the_setup_step(connect: Connect, prefix: str) -> None:
    """The scheduler binds to the lease the setup made; without it, one line says what to run."""
    with pytest.raises(FfrtmpError, match="ffrtmp streams create"):
        await Lease((await connect()).jetstream(), Subjects(prefix), "a").open()


def test_the_ttl_must_be_positive() -> None:
    """A zero lease time is a setting error, said as one."""
    with pytest.raises(InvalidSpec):
        Lease(cast("JetStreamContext", None), Subjects(), "a", ttl_s=0)
