"""No acknowledged event is lost when nats-server is killed with SIGKILL and restarted."""

from __future__ import annotations

import anyio
import pytest

from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job_events import JobQueued
from events.store import Append
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer

pytestmark = pytest.mark.anyio

KILL_AFTER = 300  # acknowledged events before the kill
CHUNK = 50


def _append(subjects: Subjects, n: int) -> Append:
    job = f"j{n % 7}"
    event = JobQueued(job=job, at=float(n), reason=str(n))
    return Append(subject=subjects.job_event(job, "sched"), event=event, msg_id=f"m{n}")


async def _write_until_killed(
    store: JetStreamEventStore, acked: dict[int, JobQueued], killed: anyio.Event
) -> None:
    """Append in pipelined chunks, keeping what was acknowledged, until an append fails."""
    n = 0
    while True:
        items = [_append(store.subjects, n + i) for i in range(CHUNK)]
        n += CHUNK
        for item, result in zip(items, await store.append_many(items), strict=True):
            if isinstance(result, Exception):
                return
            assert isinstance(item.event, JobQueued)
            acked[result] = item.event
        if len(acked) >= KILL_AFTER:
            killed.set()
        if killed.is_set() and n > 10 * KILL_AFTER:
            pytest.fail("appends kept succeeding after kill -9")


async def test_acknowledged_events_survive_kill_9(private_nats_server: NatsServer) -> None:
    """Every event acknowledged before a kill -9 is in the log after restart, in order."""
    subjects = Subjects("dur")
    acked: dict[int, JobQueued] = {}
    async with private_nats_server as server:
        store = await JetStreamEventStore.connect(server.url, subjects, ensure=True, timeout_s=1)
        killed = anyio.Event()
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_write_until_killed, store, acked, killed)
                await killed.wait()
                server.kill()
        await store.close()
        await server.arestart()
        async with await JetStreamEventStore.connect(server.url, subjects) as reopened:
            stored = dict([pair async for pair in reopened.replay()])
    assert len(acked) >= KILL_AFTER
    assert {seq: stored.get(seq) for seq in acked} == acked
    assert sorted(acked) == list(range(1, len(acked) + 1))


async def test_store_reconnects_after_a_restart(private_nats_server: NatsServer) -> None:
    """A store whose server restarts appends again once the server is back, without reopening."""
    subjects = Subjects("re")
    async with private_nats_server as server:
        store = await JetStreamEventStore.connect(server.url, subjects, ensure=True)
        async with store:
            first = await store.append(_append(subjects, 0))
            server.kill()
            await server.arestart()
            with anyio.fail_after(20):
                second = await _append_when_back(store, _append(subjects, 1))
            assert (first, second) == (1, 2)
            assert [seq async for seq, _ in store.replay()] == [1, 2]


async def _append_when_back(store: JetStreamEventStore, item: Append) -> int:
    """Retry an append (same msg_id, so a retry is a no-op) until the reconnect is done."""
    while True:
        try:
            return await store.append(item)
        except FfrtmpError:
            await anyio.sleep(0.1)  # poll interval while nats-py reconnects
