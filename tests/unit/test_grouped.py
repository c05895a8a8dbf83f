"""Group commits store what one-by-one appends would, with each item's outcome the same."""

from __future__ import annotations

import asyncio
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from events.errors import ConcurrencyConflict
from events.grouped import append_grouped
from events.job_events import JobQueued
from events.store import Append, MemoryEventStore
from events.subjects import SCHEDULER_WRITER, Subjects

_S = Subjects("t")
JOBS = ("a", "b", "c", "d")

# One append: its job, the sequence it expects (None: unchecked), its msg_id out of a few.
_appends = st.lists(
    st.tuples(st.sampled_from(JOBS), st.none() | st.integers(0, 6), st.integers(0, 9)),
    max_size=14,
)


def _append(n: int, job: str, expected: int | None, msg: int) -> Append:
    return Append(
        subject=_S.job_event(job, SCHEDULER_WRITER),
        event=JobQueued(job=job, at=float(n), reason=f"m{msg}"),
        msg_id=f"{job}-m{msg}",  # a repeated id is the same decision made again
        expected=expected,
        expected_subject=None if expected is None else _S.job_events(job),
    )


async def _twins(before: list[Append]) -> tuple[MemoryEventStore, MemoryEventStore]:
    stores = MemoryEventStore(), MemoryEventStore()
    for store in stores:
        await store.append_many(before)
    return stores


def _outcome(result: int | Exception) -> str:
    return "stored" if isinstance(result, int) else type(result).__name__


def _per_job(store: MemoryEventStore) -> dict[str, list[bytes]]:
    jobs: dict[str, list[bytes]] = {}
    for subject, data in store._log:
        jobs.setdefault(subject.split(".")[3], []).append(data)
    return jobs


@settings(max_examples=300, deadline=None)
@given(before=_appends, now=_appends, limit=st.integers(1, 4))
def test_grouped_is_append_many_item_by_item(
    before: list[tuple[str, int | None, int]],
    now: list[tuple[str, int | None, int]],
    limit: int,
) -> None:
    """Each item lands or fails as it would alone, and each job's events keep their order.

    Only the interleaving of different jobs may differ: a job's repeat goes after the batches.
    Expected sequences are of the log before the call, as a caller's are: it cannot know the
    sequences its own call will make.
    """

    async def check() -> None:
        grouped, singly = await _twins([_append(i, *a) for i, a in enumerate(before)])
        last = await singly.last_seq()
        items = [
            _append(100 + i, job, None if expected is None else min(expected, last), msg)
            for i, (job, expected, msg) in enumerate(now)
        ]
        got = await append_grouped(grouped, items, limit, least=2)
        want = await singly.append_many(items)
        assert [_outcome(r) for r in got] == [_outcome(r) for r in want]
        assert _per_job(grouped) == _per_job(singly)
        assert Counter(grouped._log) == Counter(singly._log)

    asyncio.run(check())


def test_a_check_wider_than_its_job_is_not_batched() -> None:
    """An append checked against every job must see the call's earlier appends: it conflicts."""

    async def check() -> None:
        store = MemoryEventStore()
        other = _append(1, "b", None, 1)
        wide = Append(
            subject=_S.job_event("a", SCHEDULER_WRITER),
            event=JobQueued(job="a", at=2.0, reason="wide"),
            msg_id="wide",
            expected=0,
            expected_subject=_S.all_job_events,
        )
        results = await append_grouped(store, [other, wide], least=2)
        assert results[0] == 1
        assert isinstance(results[1], ConcurrencyConflict)

    asyncio.run(check())
