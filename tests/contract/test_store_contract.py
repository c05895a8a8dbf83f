"""One contract suite for every EventStore: the in-memory twin and JetStream must agree."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
import msgspec
import nats
import pytest

from events.base import JobEventBase, SetAside, Unknown
from events.errors import BatchFailed, ConcurrencyConflict, ForgedDuplicate
from events.grouped import BATCH_MIN, append_grouped
from events.jetstream import JetStreamEventStore
from events.job_events import JobEvent, JobProgressed, JobQueued
from events.store import Append, EventStore, MemoryEventStore
from events.subjects import SCHEDULER_WRITER, Subjects
from ffrtmp.natsd import NatsServer
from tests.counting import CountingStore

pytestmark = pytest.mark.anyio

_ids = itertools.count()


@dataclass
class Backend:
    """A store under test, its subjects, and a way to put raw bytes in its log."""

    store: EventStore
    subjects: Subjects
    url: str | None = None

    async def raw(self, subject: str, data: bytes) -> None:
        """Append bytes no current event type decodes, bypassing the store."""
        if isinstance(self.store, MemoryEventStore):
            self.store._log.append((subject, data))
            await self.store._notify()
            return
        assert self.url is not None
        nc = await nats.connect(self.url)
        try:
            await nc.jetstream().publish(subject, data)
        finally:
            await nc.close()


@pytest.fixture(params=["memory", "jetstream"])
def server_url(request: pytest.FixtureRequest) -> str | None:
    """None for the memory store; the session server's URL for JetStream."""
    if request.param == "memory":
        return None
    server: NatsServer = request.getfixturevalue("nats_server")
    return server.url


@pytest.fixture
async def backend(server_url: str | None, prefix: str) -> AsyncIterator[Backend]:
    """The store for this parameter, empty, under this test's prefix."""
    subjects = Subjects(prefix)
    if server_url is None:
        yield Backend(MemoryEventStore(), subjects)
        return
    async with await JetStreamEventStore.connect(server_url, subjects, ensure=True) as store:
        yield Backend(store, subjects, server_url)


def item(
    subjects: Subjects,
    job: str,
    *,
    writer: str = "sched",
    expected: int | None = None,
    msg_id: str | None = None,
) -> Append:
    """An append of a small event on ``job``, checked against all of the job's subjects."""
    n = next(_ids)
    event: JobEvent = JobQueued(job=job, at=float(n), reason=f"r{n}")
    if writer != SCHEDULER_WRITER:  # what an agent may write: a report naming itself
        event = JobProgressed(job=job, at=float(n), agent=writer, attempt=1, percent=n % 100)
    return Append(
        subject=subjects.job_event(job, writer),
        event=event,
        msg_id=msg_id or f"m{n}",
        expected=expected,
        expected_subject=None if expected is None else subjects.job_events(job),
    )


async def test_append_returns_increasing_sequences(backend: Backend) -> None:
    """Each append returns a stream sequence greater than the one before."""
    seqs = [await backend.store.append(item(backend.subjects, "a")) for _ in range(3)]
    assert seqs == [1, 2, 3]
    assert await backend.store.last_seq() == 3


async def test_duplicate_msg_id_returns_first_sequence(backend: Backend) -> None:
    """A second append with the same msg_id returns the first one's sequence, storing nothing."""
    first = item(backend.subjects, "a", msg_id="same")
    seq = await backend.store.append(first)
    await backend.store.append(item(backend.subjects, "b"))
    assert await backend.store.append(first) == seq
    assert await backend.store.last_seq() == 2


async def test_retried_checked_append_is_a_duplicate(backend: Backend) -> None:
    """Retrying an append that carried an expected sequence returns its seq, not a conflict."""
    checked = item(backend.subjects, "a", expected=0, msg_id="once")
    seq = await backend.store.append(checked)
    later = await backend.store.append(item(backend.subjects, "a", expected=seq))
    assert await backend.store.append(checked) == seq
    assert await backend.store.last_seq() == later


async def test_an_id_taken_on_another_subject_is_not_our_append(backend: Backend) -> None:
    """An id another writer stored first is refused, never acknowledged as stored.

    The log dedups across the stream: an agent that stores, on its own subject, the id the
    scheduler will use next would otherwise make the scheduler's append vanish silently.
    """
    forged = item(backend.subjects, "other", writer="agent-x", msg_id="sched/next")
    seq = await backend.store.append(forged)
    with pytest.raises(ForgedDuplicate) as refused:
        await backend.store.append(item(backend.subjects, "victim", msg_id="sched/next"))
    assert refused.value.seq == seq
    assert (await backend.store.load("victim")).events == []


async def test_an_id_taken_on_the_same_job_is_not_our_checked_append(backend: Backend) -> None:
    """The same forgery on the job's own subjects: the checked append is refused, not 'stored'."""
    first = await backend.store.append(item(backend.subjects, "j", expected=0))
    await backend.store.append(item(backend.subjects, "j", writer="agent-x", msg_id="sched/j:2"))
    result = await backend.store.append_many(
        [item(backend.subjects, "j", expected=first, msg_id="sched/j:2")]
    )
    assert isinstance(result[0], ForgedDuplicate)
    loaded = await backend.store.load("j")
    assert [type(event) for _, event in loaded.events] == [JobQueued, JobProgressed]


async def test_expected_zero_on_a_fresh_job_succeeds(backend: Backend) -> None:
    """Expecting sequence 0 on a job with no events stores the event."""
    await backend.store.append(item(backend.subjects, "other"))
    seq = await backend.store.append(item(backend.subjects, "fresh", expected=0))
    assert (await backend.store.load("fresh")).last_seq == seq


async def test_stale_expected_conflicts_and_stores_nothing(backend: Backend) -> None:
    """A stale expected sequence raises ConcurrencyConflict carrying the actual one."""
    seq = await backend.store.append(item(backend.subjects, "a", expected=0))
    moved = await backend.store.append(item(backend.subjects, "a", writer="agent1", expected=seq))
    with pytest.raises(ConcurrencyConflict) as caught:
        await backend.store.append(item(backend.subjects, "a", expected=seq))
    assert caught.value.expected == seq
    assert caught.value.actual == moved
    assert caught.value.subject == backend.subjects.job_events("a")
    assert await backend.store.last_seq() == moved


async def test_append_many_isolates_a_conflict(backend: Backend) -> None:
    """append_many answers in order; a conflict in the middle does not stop the others."""
    s = backend.subjects
    items = [item(s, "a"), item(s, "b", expected=7), item(s, "c", expected=0), item(s, "d")]
    results = await backend.store.append_many(items)
    assert results[0] == 1
    assert isinstance(results[1], ConcurrencyConflict)
    assert results[1].actual == 0
    assert results[2:] == [2, 3]
    assert await backend.store.append_many([]) == []


async def test_append_batch_stores_all(backend: Backend) -> None:
    """A batch stores every event, at consecutive sequences, in order."""
    await backend.store.append(item(backend.subjects, "a"))
    s = backend.subjects
    seqs = await backend.store.append_batch([item(s, "a", expected=1), item(s, "b", expected=0)])
    assert seqs == [2, 3]
    assert [seq for seq, _ in (await backend.store.load("b")).events] == [3]


async def test_append_batch_stores_none_when_one_fails(backend: Backend) -> None:
    """A batch whose 2nd event has a failing expected sequence stores none of its events."""
    s = backend.subjects
    with pytest.raises(BatchFailed):
        await backend.store.append_batch([item(s, "a"), item(s, "b", expected=5), item(s, "c")])
    assert await backend.store.last_seq() == 0
    assert (await backend.store.load("a")).events == []


async def test_append_batch_checks_against_the_log_before_it(backend: Backend) -> None:
    """Inside a batch each expected sequence sees the log before the batch, not earlier items."""
    s = backend.subjects
    assert await backend.store.append_batch([item(s, "a", expected=0), item(s, "a", expected=0)])
    with pytest.raises(BatchFailed):
        await backend.store.append_batch([item(s, "b", expected=0), item(s, "b", expected=3)])
    assert await backend.store.last_seq() == 2


async def test_append_batch_refuses_a_seen_msg_id(backend: Backend) -> None:
    """A batch holding a msg_id already stored is refused whole: batches do not dedup."""
    s = backend.subjects
    await backend.store.append(item(s, "a", msg_id="seen"))
    with pytest.raises(BatchFailed):
        await backend.store.append_batch([item(s, "b"), item(s, "a", msg_id="seen")])
    assert await backend.store.last_seq() == 1
    assert await backend.store.append_batch([]) == []


async def test_load_returns_only_that_job_in_order(backend: Backend) -> None:
    """A load gives one job's events from every writer, in stream order, and its last sequence."""
    s = backend.subjects
    await backend.store.append_many(
        [item(s, "a"), item(s, "ab"), item(s, "a", writer="agent1"), item(s, "b"), item(s, "a")]
    )
    loaded = await backend.store.load("a")
    assert [seq for seq, _ in loaded.events] == [1, 3, 5]
    assert all(isinstance(e, JobEventBase) and e.job == "a" for _, e in loaded.events)
    assert loaded.last_seq == 5
    assert await backend.store.load("nobody") == type(loaded)(events=[], last_seq=0)


async def test_replay_from_a_sequence_stops_at_the_end(backend: Backend) -> None:
    """A replay yields from from_seq in order and stops at the last sequence as of the call."""
    s = backend.subjects
    await backend.store.append_many([item(s, str(n)) for n in range(5)])
    seen: list[int] = []
    async with contextlib.aclosing(backend.store.replay(3)) as events:  # type: ignore[type-var]
        async for seq, _ in events:
            if not seen:
                await backend.store.append(item(s, "late"))
            seen.append(seq)
    assert seen == [3, 4, 5]
    assert [seq async for seq, _ in backend.store.replay(7)] == []


async def test_replay_of_an_empty_log_ends_at_once(backend: Backend) -> None:
    """A replay of an empty log yields nothing and returns."""
    with anyio.fail_after(5):
        assert [x async for x in backend.store.replay()] == []


async def test_follow_yields_events_appended_after_it_started(backend: Backend) -> None:
    """A follow delivers the existing tail and then each new event as it is appended."""
    s = backend.subjects
    await backend.store.append(item(s, "before"))
    seen: list[int] = []
    got_first = anyio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(backend.store.follow(1)) as events:  # type: ignore[type-var]
            async for seq, _ in events:
                seen.append(seq)
                got_first.set()
                if len(seen) == 3:
                    return

    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await got_first.wait()
            await backend.store.append(item(s, "after1"))
            await backend.store.append(item(s, "after2"))
    assert seen == [1, 2, 3]


async def test_unknown_types_replay_as_unknown(backend: Backend) -> None:
    """An event of a type this code does not know replays and loads as Unknown."""
    s = backend.subjects
    future = {"type": "JobTeleported", "v": 1, "job": "a", "at": 1.0, "where": "mars"}
    await backend.store.append(item(s, "a"))
    await backend.raw(s.job_event("a", "sched"), msgspec.json.encode(future))
    replayed = [event async for _, event in backend.store.replay()]
    assert isinstance(replayed[1], Unknown)
    assert replayed[1].type == "JobTeleported"
    loaded = await backend.store.load("a")
    assert isinstance(loaded.events[-1][1], Unknown)
    assert loaded.last_seq == 2


async def test_junk_and_forged_events_read_as_set_aside(backend: Backend) -> None:
    """Junk and an event its writer may not write replay and load as SetAside.

    Each names where it was stored, and the job's last sequence still counts them.
    """
    s = backend.subjects
    await backend.store.append(item(s, "a"))
    await backend.raw(s.job_event("a", "sched"), b"not json")
    forged = JobQueued(job="a", at=1.0, reason="an agent may not queue a job")
    await backend.raw(s.job_event("a", "agent1"), msgspec.json.encode(forged))
    replayed = [event async for _, event in backend.store.replay()]
    assert [type(e).__name__ for e in replayed] == ["JobQueued", "SetAside", "SetAside"]
    junk, wrong = replayed[1], replayed[2]
    assert isinstance(junk, SetAside)
    assert isinstance(wrong, SetAside)
    assert (junk.kind, junk.subject) == ("malformed", s.job_event("a", "sched"))
    assert (wrong.kind, wrong.subject) == ("forged", s.job_event("a", "agent1"))
    loaded = await backend.store.load("a")
    assert [type(e).__name__ for _, e in loaded.events] == ["JobQueued", "SetAside", "SetAside"]
    assert loaded.last_seq == 3


async def test_grouped_appends_go_in_batches_the_server_takes(backend: Backend) -> None:
    """2,500 independent appends are stored as three atomic batches (the server takes 1,000)."""
    s = backend.subjects
    counting = CountingStore(backend.store)
    items = [item(s, f"g{i}", expected=0) for i in range(2_500)]
    with anyio.fail_after(60):
        seqs = await append_grouped(counting, items)  # type: ignore[arg-type]
    assert seqs == list(range(1, 2_501))
    assert (counting.batches, counting.singly) == ([1_000, 1_000, 500], 0)
    assert await backend.store.last_seq() == 2_500


async def test_a_grouped_conflict_fails_alone(backend: Backend) -> None:
    """One append whose job moved refuses its batch; the others still land, it conflicts."""
    s = backend.subjects
    await backend.store.append(item(s, "moved", expected=0))
    items = [item(s, "x", expected=0), item(s, "moved", expected=0), item(s, "y", expected=0)]
    results = await append_grouped(backend.store, items, least=2)
    assert isinstance(results[1], ConcurrencyConflict)
    assert [results[0], results[2]] == [2, 3]
    assert [seq for seq, _ in (await backend.store.load("moved")).events] == [1]


async def test_two_grouped_appends_to_one_job_do_not_both_pass(backend: Backend) -> None:
    """A batch checks against the log before it, so a job's second append goes after it."""
    s = backend.subjects
    results = await append_grouped(
        backend.store,
        [item(s, "j", expected=0), item(s, "k", expected=0), item(s, "j", expected=0)],
        least=2,
    )
    assert results[:2] == [1, 2]
    assert isinstance(results[2], ConcurrencyConflict)
    assert await backend.store.last_seq() == 2


async def test_grouped_appends_made_again_are_found_stored(backend: Backend) -> None:
    """The same decisions appended again (a takeover) return their sequences; nothing is added."""
    s = backend.subjects
    counting = CountingStore(backend.store)
    items = [item(s, f"again{i}", expected=0) for i in range(5)]
    first = await append_grouped(counting, items, least=2)  # type: ignore[arg-type]
    assert (counting.batches, counting.singly) == ([5], 0)
    again = await append_grouped(counting, items, least=2)  # type: ignore[arg-type]
    assert (counting.batches, counting.singly) == ([5], 5)  # refused whole: seen ids
    assert again == first == [1, 2, 3, 4, 5]
    assert await backend.store.last_seq() == 5


async def test_a_few_grouped_appends_go_one_by_one(backend: Backend) -> None:
    """Below BATCH_MIN a batch's commit would cost more than the appends: none is made."""
    counting = CountingStore(backend.store)
    items = [item(backend.subjects, f"few{i}", expected=0) for i in range(BATCH_MIN - 1)]
    assert await append_grouped(counting, items) == list(range(1, BATCH_MIN))  # type: ignore[arg-type]
    assert (counting.batches, counting.singly) == ([], BATCH_MIN - 1)
