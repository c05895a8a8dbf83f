"""Scheduler snapshots on a real nats-server: round trip, replacement, corruption, isolation."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.object_store import OBJ_CHUNKS_PRE_TEMPLATE

from events.streams import ensure_streams
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.snapshots import (
    CHUNK_BYTES,
    FORMAT_VERSION,
    Snapshot,
    SnapshotStore,
)

pytestmark = pytest.mark.anyio

MIB = 1 << 20

Opened = Callable[..., Awaitable[SnapshotStore]]


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    """A connection for the test, closed at the end."""
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
def opened(nc: NatsClient, prefix: str) -> Opened:
    """An opened snapshot store, under this test's prefix unless another is given."""

    async def make(store_prefix: str = prefix) -> SnapshotStore:
        await ensure_streams(nc, Subjects(store_prefix))  # the setup step makes the bucket
        store = SnapshotStore(nc.jetstream(), Subjects(store_prefix))
        await store.open()
        return store

    return make


def repetitive(size: int) -> bytes:
    """Msgpack of many similar structs, like the scheduler's queued jobs: compresses well."""
    rows = [{"id": f"job-{i:08d}", "state": "queued", "priority": i % 3} for i in range(size // 40)]
    return msgspec.msgpack.encode(rows)[:size]


async def test_nothing_saved_loads_none(opened: Opened) -> None:
    """A store with no snapshot yet loads None."""
    store = await opened()
    assert await store.load() is None


@pytest.mark.parametrize(
    ("payload", "compressed"),
    [
        pytest.param(os.urandom(3 * MIB + 17), False, id="random-3MiB"),
        pytest.param(repetitive(3 * MIB), True, id="repetitive-3MiB"),
        pytest.param(b"", False, id="empty"),
    ],
)
async def test_save_then_load_round_trips(opened: Opened, payload: bytes, compressed: bool) -> None:
    """What was saved loads back exactly, compressed only when that makes it smaller."""
    store = await opened()
    snapshot = Snapshot(covered_seq=123_456_789, taken_at=1_723_456_789.123456, payload=payload)
    written = await store.save(snapshot)
    assert (written < len(payload) // 2) is compressed
    assert await store.load() == snapshot


async def test_a_large_snapshot_spans_many_chunks(
    opened: Opened, nc: NatsClient, prefix: str
) -> None:
    """A payload larger than one chunk is stored as several and read back whole."""
    store = await opened()
    snapshot = Snapshot(covered_seq=7, taken_at=1.5, payload=os.urandom(5 * CHUNK_BYTES + 1))
    await store.save(snapshot)
    info = await (await nc.jetstream().object_store(Subjects(prefix).snapshot_bucket)).get_info(
        "scheduler"
    )
    assert info.chunks is not None
    assert info.chunks > 5
    assert await store.load() == snapshot


async def test_a_second_save_replaces_the_first(
    opened: Opened, nc: NatsClient, prefix: str
) -> None:
    """The newest save is what loads, and the first one's chunks are gone from the bucket."""
    store = await opened()
    first = Snapshot(covered_seq=10, taken_at=1.0, payload=os.urandom(2 * MIB))
    second = Snapshot(covered_seq=20, taken_at=2.0, payload=os.urandom(MIB))
    await store.save(first)
    written = await store.save(second)
    assert await store.load() == second
    bucket = Subjects(prefix).snapshot_bucket
    state = (await nc.jetstream().stream_info(f"OBJ_{bucket}")).state
    assert state.bytes < written + 64 * 1024  # the second object and its meta, nothing of the first


async def test_a_save_that_died_leaves_the_previous_snapshot(
    opened: Opened, nc: NatsClient, prefix: str
) -> None:
    """Chunks written by a save that never committed do not disturb the last snapshot."""
    store = await opened()
    kept = Snapshot(covered_seq=5, taken_at=5.0, payload=repetitive(MIB))
    await store.save(kept)
    js = nc.jetstream()
    bucket = Subjects(prefix).snapshot_bucket
    orphan = OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj="deadsavenuid")
    for _ in range(3):  # what a process killed mid-put leaves: chunks, no meta
        await js.publish(orphan, os.urandom(CHUNK_BYTES))
    assert await store.load() == kept


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(b"not a snapshot", id="not-msgpack"),
        pytest.param(msgspec.msgpack.encode({"version": 1}), id="missing-fields"),
        pytest.param(
            msgspec.msgpack.encode(
                {
                    "version": FORMAT_VERSION + 1,
                    "covered_seq": 1,
                    "taken_at": 1.0,
                    "codec": "none",
                    "payload": b"",
                }
            ),
            id="newer-format",
        ),
        pytest.param(
            msgspec.msgpack.encode(
                {
                    "version": FORMAT_VERSION,
                    "covered_seq": 1,
                    "taken_at": 1.0,
                    "codec": "zlib",
                    "payload": b"\x78\x01garbage",
                }
            ),
            id="bad-zlib",
        ),
        pytest.param(b"", id="empty-object"),
    ],
)
async def test_a_corrupt_snapshot_loads_none_with_a_warning(
    opened: Opened,
    nc: NatsClient,
    prefix: str,
    garbage: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An object under the name that is not a readable snapshot loads None and logs why."""
    store = await opened()
    await store.save(Snapshot(covered_seq=1, taken_at=1.0, payload=b"good"))
    obs = await nc.jetstream().object_store(Subjects(prefix).snapshot_bucket)
    await obs.put("scheduler", garbage)
    with caplog.at_level(logging.WARNING, logger="ffrtmp.scheduler.snapshots"):
        assert await store.load() is None
    assert "unreadable" in caplog.text


async def test_loads_racing_a_save_see_the_old_or_the_new(opened: Opened) -> None:
    """Loads while a save replaces the snapshot each return one of the two, whole."""
    store, reader = await opened(), await opened()
    a = Snapshot(covered_seq=1, taken_at=1.0, payload=os.urandom(3 * MIB))
    b = Snapshot(covered_seq=2, taken_at=2.0, payload=os.urandom(3 * MIB))
    await store.save(a)
    for saved, replaced in [(b, a), (a, b), (b, a), (a, b)]:
        saving = asyncio.create_task(store.save(saved))
        loaded = []
        while not saving.done():  # some loads read the meta just before the save commits
            loaded.append(await reader.load())
        await saving
        assert all(snapshot in (saved, replaced) for snapshot in loaded)
        assert await reader.load() == saved


async def test_prefixes_do_not_see_each_other(opened: Opened, prefix: str) -> None:
    """Two stores under different prefixes keep separate snapshots."""
    mine, theirs = await opened(), await opened(f"{prefix}-b")
    snapshot = Snapshot(covered_seq=3, taken_at=3.0, payload=b"mine")
    await mine.save(snapshot)
    assert await theirs.load() is None
    other = Snapshot(covered_seq=4, taken_at=4.0, payload=b"theirs")
    await theirs.save(other)
    assert await mine.load() == snapshot
    assert await theirs.load() == other


async def test_opening_twice_binds_the_same_bucket(opened: Opened) -> None:
    """A second open (a restarted scheduler, a standby) sees what the first saved."""
    first = await opened()
    snapshot = Snapshot(covered_seq=9, taken_at=9.0, payload=b"state")
    await first.save(snapshot)
    second = await opened()
    assert await second.load() == snapshot
