"""When a job's timer may fire, and the index that saves each tick from walking every job."""

from __future__ import annotations

import heapq

from hypothesis import given, settings
from hypothesis import strategies as st

from events.enums import JobStatus
from events.job import JobState
from ffrtmp.scheduler.deadlines import Deadlines
from ffrtmp.scheduler.timers import TimerSettings, due_at, job_timers

S = JobStatus
SETTINGS = TimerSettings()
stamp = st.floats(0.0, 10_000.0, allow_nan=False)

state = st.builds(
    JobState,
    job=st.just("j1"),
    status=st.sampled_from(list(S)),
    agent=st.just("a1"),
    attempt=st.integers(1, 5),
    budget_s=st.one_of(st.just(0.0), st.floats(0.5, 5_000.0)),
    assigned_at=stamp,
    started_at=stamp,
    last_progress_at=stamp,
    retry_at=st.one_of(st.none(), stamp),
)


@settings(max_examples=500, deadline=None)
@given(state, st.floats(0.0, 30_000.0, allow_nan=False))
def test_no_timer_fires_before_its_due_time(job: JobState, now: float) -> None:
    """Before ``due_at`` nothing fires; a timer that fires is due at or before now."""
    due = due_at(job, SETTINGS)
    fired = job_timers(job, now, SETTINGS)
    if due is None or now < due:
        assert fired is None
    if fired is not None:
        assert due is not None
        assert due <= now


@settings(max_examples=300, deadline=None)
@given(state)
def test_a_timer_due_fires_just_after(job: JobState) -> None:
    """Just past ``due_at`` the timer fires: the time is not merely early, it is the time."""
    due = due_at(job, SETTINGS)
    if due is not None:
        assert job_timers(job, due + 0.01, SETTINGS) is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), stamp), max_size=60), stamp)
def test_due_is_every_job_with_an_entry_by_now_and_changes_nothing(
    entries: list[tuple[str, float]], now: float
) -> None:
    """``due`` is a scan of all entries, earliest first, each job once; ``take`` removes them."""
    deadlines = Deadlines()
    for job, at in entries:
        deadlines.add(job, at)
    expected = list(
        dict.fromkeys(job for at, job in sorted((a, j) for j, a in entries) if at <= now)
    )
    assert deadlines.due(now) == expected
    assert deadlines.due(now) == expected  # a query: asking twice gives the same
    deadlines.take(now)
    assert deadlines.due(now) == []
    assert len(deadlines) == sum(1 for _, at in entries if at > now)


def test_entries_of_jobs_no_longer_timed_are_dropped_when_they_pile_up() -> None:
    """Stale entries are bounded by the timed jobs, not by the history of the farm."""
    deadlines = Deadlines()
    for index in range(5_000):
        deadlines.add(f"gone-{index}", 1e9 + index)
    deadlines.add("live", 1e9)
    deadlines.keep_only({"live"})
    assert len(deadlines) == 1
    assert deadlines.due(2e9) == ["live"]


def test_walk_visits_only_the_due_part_of_a_large_heap() -> None:
    """The walk stops at entries later than now: its cost follows the due, not the held."""
    deadlines = Deadlines()
    for index in range(10_000):
        deadlines.add(f"j{index}", 100.0 + index)
    assert deadlines.due(102.0) == ["j0", "j1", "j2"]
    assert heapq.nsmallest(1, deadlines._heap) == [(100.0, "j0")]
