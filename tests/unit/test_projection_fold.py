"""The projection as a fold: any split into batches, and any restart, gives the same tables."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.base import SetAside
from events.codec import Decoded
from events.enums import FailureReason, JobStatus
from events.errors import FfrtmpError
from events.job import fold
from events.job_events import (
    JobAssigned,
    JobCompleted,
    JobEvent,
    JobQueued,
    JobResults,
    JobRetrying,
    JobStarted,
    JobSubmitted,
)
from events.spec import JobSpec
from projections import Projector, runner
from projections.rows import Item
from tests.projection_support import legal_history, snapshot

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def numbered(history: list[Decoded]) -> list[Item]:
    """Events with stream sequences from 1."""
    return [(seq, event) for seq, event in enumerate(history, 1)]


def splits(data: st.DataObject, items: list[Item]) -> list[list[Item]]:
    """The items cut into random consecutive batches."""
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(items) - 1)), max_size=8)))
    bounds = [0, *[c for c in cuts if c < len(items)], len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def rebuilt(items: list[Item]) -> Projector:
    """A fresh in-memory projection of ``items`` in one batch."""
    projector = Projector()
    projector.apply(items)
    return projector


@SETTINGS
@given(data=st.data(), steps=st.integers(1, 80))
def test_any_batch_split_equals_a_fresh_rebuild(data: st.DataObject, steps: int) -> None:
    """Folding a legal history in random batches leaves every table as one batch would."""
    items = numbered(legal_history(data, steps))
    projector = Projector()
    for batch in splits(data, items):
        projector.apply(batch)
    assert snapshot(projector) == snapshot(rebuilt(items))


@settings(SETTINGS, max_examples=15)
@given(data=st.data(), steps=st.integers(1, 80))
def test_a_reopened_database_resumes_where_it_stopped(data: st.DataObject, steps: int) -> None:
    """Closing the database between batches (a restart) changes nothing in the result."""
    items = numbered(legal_history(data, steps))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.duckdb"
        Projector(path).close()
        for batch in splits(data, items):
            projector = Projector(path)
            projector.apply(batch)
            projector.close()
        projector = Projector(path)
        assert not projector.rebuilt
        assert snapshot(projector) == snapshot(rebuilt(items))


@SETTINGS
@given(data=st.data(), steps=st.integers(1, 60))
def test_jobs_table_states_are_the_job_fold(data: st.DataObject, steps: int) -> None:
    """Each row's status is what ``events.job.fold`` says: the scheduler's notion of a state."""
    history = legal_history(data, steps)
    projector = rebuilt(numbered(history))
    stored = dict(projector.query("SELECT job, status FROM jobs").rows)
    by_job: dict[str, list[JobEvent]] = {}
    for event in history:
        if isinstance(event, JobEvent):
            by_job.setdefault(event.job, []).append(event)
    expected = {job: str(fold(job, events).status) for job, events in by_job.items()}
    expected = {job: status for job, status in expected.items() if status != JobStatus.NEW}
    assert stored == expected


def test_applying_a_batch_twice_changes_nothing() -> None:
    """Events at or below the checkpoint are skipped: a redelivered batch is not doubled."""
    items = numbered(_simple_history())
    projector = rebuilt(items)
    before = snapshot(projector)
    assert projector.apply(items[-2:]) == len(items)
    assert snapshot(projector) == before


def test_unknown_and_malformed_events_are_counted_and_skipped() -> None:
    """A newer event type and junk bytes move the checkpoint and their counters only."""
    projector = Projector()
    subject = "ffrtmp.evt.job.x.sched"
    projector.apply_raw([(1, subject, b'{"type":"JobTeleported","v":1}'), (2, subject, b"no")])
    status = projector.status()
    assert (status.seq, status.events, status.unknown_events, status.malformed_events) == (
        2,
        2,
        1,
        1,
    )
    assert projector.query("SELECT count(*) FROM jobs").rows == [[0]]
    set_aside = projector.query("SELECT seq, kind, type FROM set_aside_events ORDER BY seq")
    assert set_aside.rows == [[1, "unknown", "JobTeleported"], [2, "malformed", None]]


def _simple_history() -> list[Decoded]:
    spec = JobSpec(scenario="720p-h264")
    return [
        JobSubmitted(job="a", at=1.0, spec=spec),
        JobSubmitted(job="b", at=2.0, spec=spec),
        JobAssigned(job="a", at=3.0, agent="x", attempt=1, budget_s=10.0),
    ]


def test_set_aside_is_what_apply_takes() -> None:
    """``apply`` accepts a set-aside message in place of an event, counts and lists it."""
    projector = Projector()
    projector.apply([(1, SetAside("does not decode: junk", b"junk", "ffrtmp.evt.job.x.sched"))])
    assert projector.status().malformed_events == 1
    rows = projector.query("SELECT seq, kind, reason FROM set_aside_events").rows
    assert rows == [[1, "malformed", "does not decode: junk"]]


@SETTINGS
@given(data=st.data(), steps=st.integers(1, 80))
def test_preparing_ahead_of_commits_equals_a_rebuild(data: st.DataObject, steps: int) -> None:
    """Every batch folded before any is committed (as the follower overlaps them): same tables."""
    items = numbered(legal_history(data, steps))
    projector = Projector()
    prepared = [projector.prepare(batch) for batch in splits(data, items)]
    for batch in prepared:
        if batch is not None:
            projector.commit(batch)
    assert snapshot(projector) == snapshot(rebuilt(items))


def test_a_failed_commit_rolls_back_rows_and_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit failing midway leaves no row; batches prepared after it are refused as stale."""
    items = numbered(_simple_history())
    projector = Projector()
    first, second = projector.prepare(items[:2]), projector.prepare(items[2:])
    assert first is not None
    assert second is not None
    statement = runner._statement
    calls = 0

    def second_fails(con: Any, step: Any) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk on fire")
        return statement(con, step)

    monkeypatch.setattr(runner, "_statement", second_fails)
    with pytest.raises(RuntimeError, match="disk on fire"):
        projector.commit(first)
    monkeypatch.undo()
    assert projector.checkpoint() == 0
    assert projector.query("SELECT count(*) FROM jobs").rows == [[0]]
    with pytest.raises(FfrtmpError, match="prepared before a failed commit"):
        projector.commit(second)
    projector.apply(items)
    assert snapshot(projector) == snapshot(rebuilt(items))


def test_a_job_completed_on_its_second_attempt_has_no_failure_reason() -> None:
    """``jobs list`` reads the jobs table: no failure there; the transitions keep the retry's."""
    spec = JobSpec(scenario="720p-h264")
    results = JobResults(wall_s=1.0)
    lost = FailureReason.AGENT_LOST
    history: list[Decoded] = [
        JobSubmitted(job="a", at=1.0, spec=spec),
        JobAssigned(job="a", at=2.0, agent="x", attempt=1, budget_s=10.0),
        JobStarted(job="a", at=3.0, agent="x", attempt=1),
        JobRetrying(job="a", at=4.0, agent="x", attempt=1, reason=lost, retry_at=9.0),
        JobQueued(job="a", at=9.0),
        JobAssigned(job="a", at=10.0, agent="y", attempt=2, budget_s=10.0),
        JobStarted(job="a", at=11.0, agent="y", attempt=2),
        JobCompleted(job="a", at=12.0, agent="y", attempt=2, results=results),
    ]
    projector = rebuilt(numbered(history))
    row = projector.query("SELECT status, failure_reason, failure_message FROM jobs").rows
    assert row == [["completed", None, None]]
    reasons = projector.query("SELECT reason FROM job_transitions WHERE reason IS NOT NULL").rows
    assert reasons == [["agent_lost"]]
