"""The one door from stored bytes to events: it never raises, and binds each event to its writer."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.admit import AGENT_REPORTS, FORGED, inadmissible, job_of, read_event
from events.base import AgentEventBase, JobEventBase, SetAside, Unknown
from events.codec import encode
from events.enums import FailureReason, JobStatus
from events.job import JobState, evolve, foreign_report
from events.job_events import (
    JobAssigned,
    JobCanceled,
    JobCompleted,
    JobFailed,
    JobProgressed,
    JobResults,
    JobStarted,
    JobSubmitted,
)
from events.spec import JobSpec
from events.subjects import Subjects
from tests import strategies as s

SUBJECTS = Subjects("ffrtmp")
RUNNING = JobState(
    job="j", status=JobStatus.RUNNING, spec=JobSpec(scenario="720p-h264"), agent="a1", attempt=2
)
RESULTS = JobResults(wall_s=1.0)
SPEC = JobSpec(scenario="720p-h264")


@given(st.binary(max_size=512), st.text(max_size=80))
def test_any_bytes_on_any_subject_read_as_something(data: bytes, subject: str) -> None:
    """Whatever was stored, wherever: an event, Unknown or SetAside; never an exception."""
    event = read_event(subject, data)
    assert isinstance(event, JobEventBase | AgentEventBase | Unknown | SetAside)


@pytest.mark.parametrize(
    "data",
    [b"not json", b"", b"{}", b'{"type":"JobQueued"}', b"\xff\xfe", b"[" * 10_000, b'"x"'],
)
def test_junk_on_a_job_subject_is_set_aside_with_its_reason(data: bytes) -> None:
    """Junk is set aside as malformed, keeping where it was stored; the reason says why."""
    subject = SUBJECTS.job_event("x", "sched")
    event = read_event(subject, data)
    assert isinstance(event, SetAside)
    assert (event.kind, event.subject) == ("malformed", subject)
    assert event.reason.startswith("does not decode")


@given(s.events, st.sampled_from(["sched", "a1", "a2"]), st.sampled_from(["a1", "a2", ""]))
def test_an_event_on_its_own_subject_is_admitted_by_the_rules(
    event: Any, writer: str, agent: str
) -> None:
    """An event on its own job's subject is admitted iff its writer may write it.

    The scheduler may write anything; an agent only a report naming itself. An agent event on
    its agent's subject always is.
    """
    if "agent" in event.__struct_fields__:
        event = msgspec.structs.replace(event, agent=agent or "a3")
    if "job" in event.__struct_fields__:
        event = msgspec.structs.replace(event, job="j1")
    if isinstance(event, AgentEventBase):
        assert read_event(SUBJECTS.agent_event(event.agent), encode(event)) == event
        return
    got = read_event(SUBJECTS.job_event(event.job, writer), encode(event))
    allowed = writer == "sched" or (isinstance(event, AGENT_REPORTS) and event.agent == writer)
    assert (got == event) is allowed
    if not allowed:
        assert isinstance(got, SetAside)
        assert got.kind == FORGED


@pytest.mark.parametrize(
    ("subject", "event", "why"),
    [
        (
            SUBJECTS.job_event("j", "a2"),
            JobCompleted(job="j", at=1.0, agent="a1", attempt=1, results=RESULTS),
            "names agent 'a1' but was written by a2",
        ),
        (
            SUBJECTS.job_event("j", "a2"),
            JobSubmitted(job="j", at=1.0, spec=JobSpec(scenario="720p-h264")),
            "only the scheduler writes it",
        ),
        (
            SUBJECTS.job_event("other", "sched"),
            JobCanceled(job="j", at=1.0),
            "names job 'j', stored on job other's subject",
        ),
        (
            SUBJECTS.agent_event("j"),
            JobCanceled(job="j", at=1.0),
            "not a job subject",
        ),
        (
            SUBJECTS.assignment("j", "a2"),
            JobAssigned(job="j", at=1.0, agent="a1", attempt=1, budget_s=9.0),
            "JobAssigned to 'a1' stored on",
        ),
        (
            SUBJECTS.assignment("j", "a1"),
            JobCanceled(job="j", at=1.0),
            "only an assignment goes there",
        ),
        (
            SUBJECTS.job_event("j", "a1") + ".a1",
            JobAssigned(job="j", at=1.0, agent="a1", attempt=1, budget_s=9.0),
            "not a job subject",
        ),
    ],
)
def test_a_forged_event_is_named(subject: str, event: Any, why: str) -> None:
    """Another agent's report, a scheduler-only event from an agent, another job's event: named."""
    reason = inadmissible(subject, event)
    assert reason is not None
    assert why in reason


def test_an_assignment_on_its_agents_subject_is_admitted() -> None:
    """``…job.<job>.sched.<agent>`` holds the scheduler's assignment of ``job`` to ``agent``."""
    event = JobAssigned(job="j1", at=1.0, agent="a1", attempt=1, budget_s=9.0, spec=SPEC)
    assert read_event(SUBJECTS.assignment("j1", "a1"), encode(event)) == event
    assert SUBJECTS.parse_job_subject(SUBJECTS.assignment("j1", "a1")) == ("j1", "sched")


def test_job_of_reads_a_job_subject_only() -> None:
    """The job token of a job subject (an assignment's too); "" for anything else."""
    assert job_of(SUBJECTS.job_event("j1", "a1")) == "j1"
    assert job_of(SUBJECTS.assignment("j1", "a1")) == "j1"
    assert job_of(SUBJECTS.job_event("j1", "a1") + ".a1") == ""
    assert job_of(SUBJECTS.agent_event("a1")) == ""
    assert job_of("") == ""


@pytest.mark.parametrize(
    "report",
    [
        JobCompleted(job="j", at=2.0, agent="a2", attempt=2, results=RESULTS),
        JobCompleted(job="j", at=2.0, agent="a1", attempt=1, results=RESULTS),
        JobStarted(job="j", at=2.0, agent="a2", attempt=2),
        JobProgressed(job="j", at=2.0, agent="a2", attempt=2, percent=50.0),
        JobFailed(job="j", at=2.0, agent="a2", attempt=2, reason=FailureReason.USER_ERROR),
        JobCanceled(job="j", at=2.0, agent="a2"),
    ],
)
def test_the_fold_ignores_a_report_from_anyone_but_the_holder(report: Any) -> None:
    """A report from another agent, or on another attempt, changes nothing."""
    assert foreign_report(RUNNING, report)
    assert evolve(RUNNING, report) is RUNNING


def test_the_holders_report_still_applies() -> None:
    """The holder's completion of its own attempt completes the job."""
    report = JobCompleted(job="j", at=2.0, agent="a1", attempt=2, results=RESULTS)
    assert not foreign_report(RUNNING, report)
    assert evolve(RUNNING, report).status is JobStatus.COMPLETED


@given(s.events)
def test_a_foreign_report_never_moves_any_state(event: Any) -> None:
    """Whatever the event, if it is a foreign report the fold leaves the state as it was."""
    if not isinstance(event, JobEventBase):
        return
    assigned = JobAssigned(job=event.job, at=1.0, agent="a1", attempt=3, budget_s=10.0)
    state = evolve(JobState(job=event.job, status=JobStatus.QUEUED), assigned)
    if foreign_report(state, event):  # type: ignore[arg-type]
        assert evolve(state, event) is state  # type: ignore[arg-type]
