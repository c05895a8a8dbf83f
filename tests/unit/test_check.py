"""The invariant checker: legal histories pass, and each kind of corruption is named.

Legal histories come from the job decider itself: a random walk puts operator commands,
scheduler decisions and agent reports (stale and foreign ones included) to ``decide`` for a few
jobs on a shared clock and records what it yields. Corruptions are then injected one at a time.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from events.agent_events import AgentLost, AgentRegistered, Capabilities
from events.base import Unknown
from events.commands import (
    AgentGone,
    Assign,
    CancelJob,
    Complete,
    ControlDone,
    Fail,
    JobCommand,
    PauseJob,
    Progress,
    Reject,
    RequeueDue,
    RespondToJob,
    ResumeJob,
    RetryJob,
    Start,
    SubmitJob,
    TimeOut,
)
from events.enums import ControlAction, FailureReason, JobStatus, TimeoutKind
from events.job import JobState, decide, evolve, initial, is_terminal
from events.job_events import (
    JobAssigned,
    JobCompleted,
    JobResults,
    JobStarted,
)
from events.spec import JobSpec
from ffrtmp.check import CheckSettings, Kind, Record, check
from tests.strategies import specs

AGENTS = ("a1", "a2")
JOBS = ("j1", "j2", "j3")
T0 = 1.8e9
RESULTS = JobResults(wall_s=1.0)
SPEC = JobSpec(scenario="720p-h264", duration_s=1.0)


def _forward(state: JobState, now: float) -> JobCommand | None:
    """The command that moves this job on along the happy path, if it has one."""
    op: dict[str, Any] = {"id": f"f{now}", "job": state.job, "at": now}
    holder: dict[str, Any] = {"agent": state.agent, "attempt": state.attempt}
    match state.status:
        case JobStatus.NEW:
            return SubmitJob(**op, spec=SPEC)
        case JobStatus.PENDING:
            return RespondToJob(**op, approve=True)
        case JobStatus.QUEUED:
            return Assign(agent=AGENTS[0], budget_s=60.0)
        case JobStatus.ASSIGNED:
            return Start(**holder)
        case JobStatus.RUNNING:
            return Complete(**holder, results=RESULTS)
        case JobStatus.PAUSED:
            return ResumeJob(**op)
        case JobStatus.RETRYING:
            return RequeueDue()
        case _:
            return None


def _command(data: st.DataObject, state: JobState, now: float) -> JobCommand:
    """A command for this job: often the one that moves it on, else any, stale or foreign."""
    forward = _forward(state, now)
    if forward is not None and data.draw(st.booleans()):
        return forward
    job = state.job
    agent = data.draw(st.sampled_from((*AGENTS, state.agent or AGENTS[0])))
    attempt = data.draw(st.sampled_from((state.attempt, state.attempt, state.attempt - 1)))
    op: dict[str, Any] = {"id": f"c{now}", "job": job, "at": now}
    choices: list[Any] = [
        SubmitJob(**op, spec=data.draw(specs)),
        Assign(agent=data.draw(st.sampled_from(AGENTS)), budget_s=60.0),
        Start(agent=agent, attempt=attempt),
        Start(agent=agent, attempt=attempt),
        Progress(agent=agent, attempt=attempt, percent=50.0),
        Complete(agent=agent, attempt=attempt, results=RESULTS),
        Complete(agent=agent, attempt=attempt, results=RESULTS),
        Fail(agent=agent, attempt=attempt, reason=data.draw(st.sampled_from(FailureReason))),
        TimeOut(attempt=attempt, kind=TimeoutKind.BUDGET),
        AgentGone(agent=agent),
        RequeueDue(),
        Reject(message="no agent can"),
        CancelJob(**op),
        PauseJob(**op),
        ResumeJob(**op),
        RespondToJob(**op, approve=data.draw(st.booleans())),
        RetryJob(**op, by="op"),
        ControlDone(agent=agent, action=data.draw(st.sampled_from(ControlAction))),
    ]
    command: JobCommand = data.draw(st.sampled_from(choices))
    return command


def _registrations() -> list[Any]:
    caps = Capabilities(encoders=("libx264",))
    return [AgentRegistered(agent=a, at=T0, capabilities=caps, slots=2) for a in AGENTS]


def legal_history(data: st.DataObject, steps: int) -> tuple[list[Any], dict[str, JobState]]:
    """A log the decider wrote: agents register, then a walk over a few jobs on one clock."""
    events: list[Any] = _registrations()
    states = {job: initial(job) for job in JOBS}
    now = T0
    for _ in range(steps):
        now += data.draw(st.floats(min_value=0.0, max_value=0.5))
        job = data.draw(st.sampled_from(JOBS))
        state = states[job]
        if state.status is JobStatus.RETRYING and state.retry_at and data.draw(st.booleans()):
            now = max(now, state.retry_at)  # let the backoff come due
        for event in decide(state, _command(data, state, now), now):
            state = evolve(state, event)
            events.append(event)
        states[job] = state
    return events, states


def records(events: list[Any]) -> list[Record]:
    """Events stored one after another from sequence 1."""
    return [Record(seq, "", event) for seq, event in enumerate(events, 1)]


def kinds_at(report: Any) -> set[tuple[Kind, str, int]]:
    """Each violation as (kind, job, seq)."""
    return {(v.kind, v.job, v.seq) for v in report.violations}


history = st.data()


@settings(max_examples=100, deadline=None)
@given(data=history, steps=st.integers(min_value=0, max_value=50))
def test_a_history_the_decider_wrote_has_no_violations(data: st.DataObject, steps: int) -> None:
    """Whatever the decider recorded, with stale and foreign reports refused, is legal."""
    events, states = legal_history(data, steps)
    report = check(records(events))
    assert report.violations == []
    assert report.jobs == sum(s.status is not JobStatus.NEW for s in states.values())


@settings(max_examples=25, deadline=None)
@given(data=history, steps=st.integers(min_value=0, max_value=40))
def test_a_quiescent_check_names_every_job_that_is_not_done(
    data: st.DataObject, steps: int
) -> None:
    """At the end of a finished run every submitted job must be terminal, and only those pass."""
    events, states = legal_history(data, steps)
    report = check(records(events), CheckSettings(quiescent=True))
    open_jobs = {
        job for job, s in states.items() if s.status is not JobStatus.NEW and not is_terminal(s)
    }
    assert {v.job for v in report.violations} == open_jobs
    assert {v.kind for v in report.violations} <= {Kind.NOT_TERMINAL}


def _first(events: list[Any], kind: type) -> int:
    matches = [i for i, e in enumerate(events) if isinstance(e, kind)]
    assume(matches)
    return matches[0]


@settings(max_examples=25, deadline=None)
@given(data=history, steps=st.integers(min_value=10, max_value=40))
def test_a_second_completion_is_found(data: st.DataObject, steps: int) -> None:
    """A JobCompleted for a job already completed is named, with its job and sequence."""
    events, _ = legal_history(data, steps)
    first = events[_first(events, JobCompleted)]
    events.append(first)
    report = check(records(events))
    assert (Kind.COMPLETED_TWICE, first.job, len(events)) in kinds_at(report)


@pytest.mark.parametrize("report_type", [JobStarted, JobCompleted])
@settings(max_examples=25, deadline=None)
@given(data=history, steps=st.integers(min_value=10, max_value=40))
def test_a_report_by_another_agent_is_found(
    report_type: type, data: st.DataObject, steps: int
) -> None:
    """A start or completion by an agent that does not hold the attempt is a wrong-agent one."""
    events, _ = legal_history(data, steps)
    index = _first(events, report_type)
    events[index] = msgspec.structs.replace(events[index], agent="intruder")
    report = check(records(events))
    assert (Kind.WRONG_AGENT, events[index].job, index + 1) in kinds_at(report)


@settings(max_examples=25, deadline=None)
@given(data=history, steps=st.integers(min_value=10, max_value=40))
def test_a_start_before_its_assignment_is_out_of_order(data: st.DataObject, steps: int) -> None:
    """Swapping an assignment with the start that follows it puts the start out of order."""
    events, _ = legal_history(data, steps)
    start = _first(events, JobStarted)
    job = events[start].job
    assigned = max(
        i for i in range(start) if isinstance(events[i], JobAssigned) and events[i].job == job
    )
    events[assigned], events[start] = events[start], events[assigned]
    report = check(records(events))
    assert (Kind.OUT_OF_ORDER, job, assigned + 1) in kinds_at(report)


@settings(max_examples=25, deadline=None)
@given(data=history, steps=st.integers(min_value=10, max_value=40))
def test_a_sequence_that_goes_back_is_out_of_order(data: st.DataObject, steps: int) -> None:
    """Records of one job whose sequences do not increase are named."""
    events, _ = legal_history(data, steps)
    rows = records(events)
    index = _first(events, JobStarted)
    job = events[index].job
    earlier = next(i for i in range(index) if getattr(events[i], "job", None) == job)
    rows[index] = Record(rows[earlier].seq, "", events[index])
    report = check(rows)
    assert (Kind.OUT_OF_ORDER, job, rows[earlier].seq) in kinds_at(report)


@settings(max_examples=25, deadline=None)
@given(data=history, steps=st.integers(min_value=1, max_value=40))
def test_a_change_after_the_end_is_illegal(data: st.DataObject, steps: int) -> None:
    """Once a job is terminal, any further assignment is an illegal transition."""
    events, states = legal_history(data, steps)
    done = [job for job, s in states.items() if is_terminal(s)]
    assume(done)
    late = JobAssigned(job=done[0], at=T0 + 99, agent="a1", attempt=99, budget_s=1.0)
    events.append(late)
    report = check(records(events))
    assert (Kind.ILLEGAL, done[0], len(events)) in kinds_at(report)


def _held(agent: str = "a1") -> list[Any]:
    spec = SubmitJob(id="s", job="j1", at=T0, spec=SPEC)
    state, events = initial("j1"), [*_registrations()]
    for command in (spec, Assign(agent=agent, budget_s=60.0), Start(agent=agent, attempt=1)):
        for event in decide(state, command, T0):
            state = evolve(state, event)
            events.append(event)
    return events


def test_a_job_held_by_a_lost_agent_past_the_grace_is_stuck() -> None:
    """A running job whose agent was lost long ago, with no retry recorded, is stuck."""
    events = [*_held(), AgentLost(agent="a1", at=T0 + 1, last_seen=T0)]
    report = check(records(events), CheckSettings(now=T0 + 1 + 61, grace_s=60))
    assert [(v.kind, v.job) for v in report.violations] == [(Kind.STUCK, "j1")]
    fresh = check(records(events), CheckSettings(now=T0 + 30, grace_s=60))
    assert fresh.ok


def test_a_job_held_by_an_online_agent_is_live() -> None:
    """A running job whose agent is online has live work, however long ago it started."""
    report = check(records(_held()), CheckSettings(now=T0 + 10_000))
    assert report.ok
    assert report.statuses == {"running": 1}


def test_a_retry_never_queued_again_is_stuck() -> None:
    """A retry whose due time passed long ago without a JobQueued is stuck."""
    events = _held()
    state = initial("j1")
    for event in events[2:]:
        state = evolve(state, event)
    fail = Fail(agent="a1", attempt=1, reason=FailureReason.RUNTIME_ERROR)
    events += decide(state, fail, T0 + 1)
    assert check(records(events), CheckSettings(now=T0 + 10)).ok
    report = check(records(events), CheckSettings(now=T0 + 1000))
    assert [v.kind for v in report.violations] == [Kind.STUCK]


ENDINGS: dict[str, list[JobCommand]] = {
    "failed": [Fail(agent="a1", attempt=1, reason=FailureReason.USER_ERROR)],
    "canceled": [
        CancelJob(id="c", job="j1", at=T0),
        ControlDone(agent="a1", action=ControlAction.CANCEL, attempt=1),
    ],
}


@pytest.mark.parametrize("ending", ENDINGS.values(), ids=ENDINGS.keys())
def test_an_operators_retry_of_an_ended_job_is_legal(ending: list[JobCommand]) -> None:
    """``RetryJob`` queues a failed or canceled job again: legal, and the job is live."""
    events = _held()
    state = initial("j1")
    for event in events[2:]:
        state = evolve(state, event)
    for command in [*ending, RetryJob(id="r", job="j1", at=T0 + 2, by="op")]:
        for event in decide(state, command, T0 + 2):
            state = evolve(state, event)
            events.append(event)
    assert state.status is JobStatus.QUEUED
    report = check(records(events), CheckSettings(now=T0 + 3))
    assert report.ok, report.violations
    assert report.statuses == {"queued": 1}


def test_unknown_events_are_counted_not_flagged() -> None:
    """An event from newer code is counted and skipped."""
    rows = [*records(_held()), Record(99, "", Unknown(type="JobTeleported", v=1, raw=b"{}"))]
    report = check(rows)
    assert report.ok
    assert report.unknown == 1


def test_violation_lines_name_job_and_sequence() -> None:
    """A violation prints as one line with its job, sequence and kind."""
    events = [*_held(), _held()[-1]]
    (violation,) = check(records(events)).violations
    assert violation.line().startswith(f"job j1 seq {len(events)}: illegal: JobStarted")
