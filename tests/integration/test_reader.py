"""The raw stream reader against a real nats-server, through the router and the public callback."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import msgspec
import nats
import pytest
from nats.aio.client import Client as NatsClient

from events import reader
from events.errors import StoreUnavailable
from events.reader import read_forever, read_to_end
from events.streams import ensure_streams
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("read_path")]

DEADLINE_S = 10


@pytest.fixture(params=["router", "callback"])
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run each test through the router and through the public subscribe callback."""
    if request.param == "callback":
        monkeypatch.setattr(reader, "_router", lambda _nc: None)
    return str(request.param)


@pytest.fixture
async def nc(nats_server: NatsServer, prefix: str) -> AsyncIterator[NatsClient]:
    """A connection to the session server, with this test's streams created."""
    client = await nats.connect(nats_server.url)
    await ensure_streams(client, Subjects(prefix))
    yield client
    await client.close()


async def publish(nc: NatsClient, subject: str, count: int, size: int = 0) -> list[int]:
    """Store ``count`` messages on ``subject``, pipelined; their sequences."""
    js = nc.jetstream()
    acks = [await js.publish_async(subject, _body(i, size)) for i in range(count)]
    return [(await ack).seq for ack in acks]


def _body(i: int, size: int) -> bytes:
    return msgspec.json.encode({"n": i, "pad": "x" * size})


async def collect(items: AsyncIterator[tuple[int, str, bytes]]) -> list[int]:
    """The sequences an iterator yields until it ends."""
    with anyio.fail_after(DEADLINE_S):
        return [seq async for seq, _, _ in items]


async def consumers(nc: NatsClient, stream: str) -> list[str]:
    """The names of the stream's consumers."""
    reply = await nc.request(f"$JS.API.CONSUMER.NAMES.{stream}", b"")
    return list(msgspec.json.decode(reply.data)["consumers"] or [])


async def test_the_read_path_is_the_one_named(
    nc: NatsClient, prefix: str, read_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the router path the router is installed and takes every message; else none is.

    Were nats-py to stop calling ``Client._process_msg`` (or change its shape), reads would
    quietly fall back to the callback, or stall; this fails loudly instead.
    """
    s = Subjects(prefix)
    routed: list[int] = []
    on_raw = reader._Feed.on_raw

    def counted(feed: reader._Feed, *args: bytes | None) -> None:
        routed.append(1)
        on_raw(feed, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(reader._Feed, "on_raw", counted)
    await publish(nc, s.job_event("a", "sched"), 20)
    assert len(await collect(read_to_end(nc, s.events_stream, s.all_events))) == 20
    if read_path == "router":
        assert isinstance(nc._process_msg, reader._Router), "nats-py's _process_msg changed"
        assert len(routed) == 20, "the router received no message: the private hook is dead"
    else:
        assert routed == []


async def test_reads_everything_in_order(nc: NatsClient, prefix: str) -> None:
    """From sequence 1 the reader yields every message once, in order, with subject and payload."""
    s = Subjects(prefix)
    seqs = await publish(nc, s.job_event("a", "sched"), 50)
    items = [item async for item in read_to_end(nc, s.events_stream, s.all_events)]
    assert [seq for seq, _, _ in items] == seqs == list(range(1, 51))
    assert [msgspec.json.decode(data)["n"] for _, _, data in items] == list(range(50))
    assert {subject for _, subject, _ in items} == {s.job_event("a", "sched")}


async def test_reads_from_a_middle_sequence(nc: NatsClient, prefix: str) -> None:
    """Starting at sequence 21 yields 21 to the end and nothing before it."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 30)
    assert await collect(read_to_end(nc, s.events_stream, s.all_events, 21)) == list(range(21, 31))


async def test_a_start_past_the_end_yields_nothing(nc: NatsClient, prefix: str) -> None:
    """Starting after the last sequence yields nothing and ends."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 3)
    assert await collect(read_to_end(nc, s.events_stream, s.all_events, 4)) == []


async def test_stops_at_the_end_as_of_the_start(nc: NatsClient, prefix: str) -> None:
    """Messages stored after the read began are not read: it stops at the last one before."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 5)
    seen = []
    with anyio.fail_after(DEADLINE_S):
        async for seq, _, _ in read_to_end(nc, s.events_stream, s.all_events):
            seen.append(seq)
            if seq == 1:
                await publish(nc, s.job_event("a", "sched"), 3)
    assert seen == [1, 2, 3, 4, 5]


async def test_an_empty_stream_yields_nothing(nc: NatsClient, prefix: str) -> None:
    """Reading an empty stream to its end yields nothing and creates no consumer."""
    s = Subjects(prefix)
    assert await collect(read_to_end(nc, s.events_stream, s.all_events)) == []
    assert await consumers(nc, s.events_stream) == []


async def test_a_subject_filter_yields_only_matching_subjects(nc: NatsClient, prefix: str) -> None:
    """A filter on one job yields its messages only, and ends though the stream ends elsewhere."""
    s = Subjects(prefix)
    mine = await publish(nc, s.job_event("a", "sched"), 3)
    await publish(nc, s.job_event("b", "sched"), 2)
    mine += await publish(nc, s.job_event("a", "agent-1"), 2)
    await publish(nc, s.job_event("b", "agent-1"), 2)
    items = [item async for item in read_to_end(nc, s.events_stream, s.job_events("a"))]
    assert [seq for seq, _, _ in items] == mine == [1, 2, 3, 6, 7]
    writers = [subject.rpartition(".")[2] for _, subject, _ in items]
    assert writers == ["sched"] * 3 + ["agent-1"] * 2


async def test_a_filter_nothing_matches_yields_nothing(nc: NatsClient, prefix: str) -> None:
    """A filter that matches no stored message yields nothing and ends."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 3)
    assert await collect(read_to_end(nc, s.events_stream, s.job_events("zzz"))) == []


async def test_follow_sees_messages_stored_after_it_started(nc: NatsClient, prefix: str) -> None:
    """read_forever yields what is stored while it waits, in order."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 1)
    follow = read_forever(nc, s.events_stream, s.all_events)
    async with contextlib.aclosing(follow):
        with anyio.fail_after(DEADLINE_S):
            assert (await anext(follow))[0] == 1
            await publish(nc, s.job_event("a", "sched"), 2)
            assert [(await anext(follow))[0], (await anext(follow))[0]] == [2, 3]


async def test_closing_deletes_the_consumer(nc: NatsClient, prefix: str) -> None:
    """Closing a follow early unsubscribes and deletes its consumer on the server."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 3)
    follow = read_forever(nc, s.events_stream, s.all_events)
    with anyio.fail_after(DEADLINE_S):
        await anext(follow)
        assert len(await consumers(nc, s.events_stream)) == 1
        await follow.aclose()
        assert await consumers(nc, s.events_stream) == []


async def test_a_lost_consumer_is_recreated_from_the_last_sequence(
    nc: NatsClient, prefix: str
) -> None:
    """When its consumer disappears, the follow recreates it and loses or repeats nothing."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 3)
    follow = read_forever(nc, s.events_stream, s.all_events, heartbeat_s=0.2)
    async with contextlib.aclosing(follow):
        with anyio.fail_after(DEADLINE_S):
            assert (await anext(follow))[0] == 1
            for name in await consumers(nc, s.events_stream):
                await nc.request(f"$JS.API.CONSUMER.DELETE.{s.events_stream}.{name}", b"")
            await publish(nc, s.job_event("a", "sched"), 3)
            assert [(await anext(follow))[0] for _ in range(5)] == [2, 3, 4, 5, 6]


async def test_a_slow_reader_gets_everything_through_flow_control(
    nc: NatsClient, prefix: str
) -> None:
    """A reader slower than the server still gets every message of a large read, in order."""
    s = Subjects(prefix)
    seqs = await publish(nc, s.job_event("a", "sched"), 1500, size=20_000)
    seen = []
    with anyio.fail_after(60):
        async for seq, _, _ in read_to_end(nc, s.events_stream, s.all_events):
            seen.append(seq)
            if seq % 100 == 0:
                await anyio.sleep(0.01)  # a slow reader, not a synchronisation
    assert seen == seqs


async def test_a_missing_stream_is_store_unavailable(nc: NatsClient) -> None:
    """Reading a stream that does not exist says so and how to create it."""
    with anyio.fail_after(DEADLINE_S), pytest.raises(StoreUnavailable, match="ffrtmp server"):
        await collect(read_to_end(nc, "NO_SUCH_EVENTS", "nosuch.evt.>"))


async def test_readers_on_one_connection_do_not_mix(nc: NatsClient, prefix: str) -> None:
    """Two reads at once on one connection each get their own messages, all of them."""
    s = Subjects(prefix)
    a = await publish(nc, s.job_event("a", "sched"), 40)
    b = await publish(nc, s.job_event("b", "sched"), 30)
    got: dict[str, list[int]] = {}

    async def read(job: str) -> None:
        got[job] = await collect(read_to_end(nc, s.events_stream, s.job_events(job)))

    async with anyio.create_task_group() as tg:
        tg.start_soon(read, "a")
        tg.start_soon(read, "b")
    assert got == {"a": a, "b": b}


async def test_a_cancelled_follow_still_deletes_its_consumer(nc: NatsClient, prefix: str) -> None:
    """A follow cancelled while it waits unsubscribes and deletes its consumer all the same."""
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 1)
    reading = anyio.Event()

    async def follow_until_cancelled() -> None:
        async for _ in read_forever(nc, s.events_stream, s.all_events):
            reading.set()

    with anyio.fail_after(DEADLINE_S):
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow_until_cancelled)
            await reading.wait()
            tg.cancel_scope.cancel()
        while await consumers(nc, s.events_stream):  # noqa: ASYNC110 -- the server's list is the condition
            await anyio.sleep(0.01)  # poll interval until the deletion lands


async def test_the_leader_is_asked_whether_a_read_ended_short(nc: NatsClient, prefix: str) -> None:
    """A read trusts its consumer's "nothing pending" only as far as the stream's leader agrees.

    In a cluster the consumer's server can be behind the leader; ``_stored_before`` asks the
    leader whether a message on the subject lies between the next wanted sequence and the end.
    """
    s = Subjects(prefix)
    await publish(nc, s.job_event("a", "sched"), 3)
    await publish(nc, s.agent_event("x"), 2)
    jobs = reader._Request(s.events_stream, f"{prefix}.evt.job.>", 1.0)
    assert await reader._stored_before(nc, jobs, 1, 5)
    assert await reader._stored_before(nc, jobs, 3, 5)
    assert not await reader._stored_before(nc, jobs, 4, 5)  # only agent events from 4 on
    assert not await reader._stored_before(nc, jobs, 6, 9)  # past the last message
    assert not await reader._stored_before(nc, jobs, 3, 2)  # an empty range
