"""The dedup-id formats: the scheduler's and the agents' can never name the same message."""

from __future__ import annotations

import typing

from hypothesis import given
from hypothesis import strategies as st

from agent.report import msg_id
from events import dedup
from events.agent_events import AgentEvent
from events.ids import check_id
from events.job_events import JobEvent, JobProgressed
from events.limits import check_command_id

# Every id a check lets through (``check_id``, ``check_command_id``), not only the tidy ones.
job_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,63}", fullmatch=True).map(check_id)
command_ids = st.from_regex(r"[A-Za-z0-9_.:-]{1,128}", fullmatch=True).map(check_command_id)
attempts = st.integers(min_value=0, max_value=10_000)
job_types = st.sampled_from([t.__name__ for t in typing.get_args(JobEvent)])
agent_types = st.sampled_from([t.__name__ for t in typing.get_args(AgentEvent)])
details = st.one_of(st.just(""), job_ids, command_ids, st.floats(0, 100).map(lambda p: f"{p:g}"))
registrations = st.text("0123456789abcdef", max_size=12)
marks = st.one_of(st.none(), st.integers(0, 2**40), st.floats(1.7e9, 2.0e9))

scheduler_ids = st.one_of(
    st.builds(dedup.scheduler_job_event, job_ids, attempts, job_types, details),
    st.builds(
        dedup.scheduler_agent_event,
        job_ids,
        st.sampled_from(["lost", "returned", "quarantined"]),
        marks,
    ),
)
agent_ids = st.one_of(
    st.builds(dedup.agent_job_event, job_ids, attempts, job_types, details),
    st.builds(dedup.agent_lifecycle, job_ids, agent_types, registrations),
)


@given(scheduler_ids, agent_ids)
def test_the_schedulers_decisions_never_share_an_id_with_an_agents_events(
    sched: str, agent: str
) -> None:
    """Same job, attempt, type and detail or not, the two writers' ids differ."""
    assert sched != agent


@given(job_ids, attempts, job_types, details)
def test_the_same_decision_from_either_writer_gets_two_ids(
    job: str, attempt: int, event_type: str, detail: str
) -> None:
    """The case the old formats left to a trailing colon: equal inputs, a detail given."""
    sched = dedup.scheduler_job_event(job, attempt, event_type, detail)
    assert sched != dedup.agent_job_event(job, attempt, event_type, detail)
    assert sched.startswith(dedup.SCHEDULER_MARK)


@given(command_ids, st.integers(0, 64), scheduler_ids)
def test_a_command_id_cannot_forge_a_scheduler_decisions_id(
    command: str, index: int, sched: str
) -> None:
    """An operator picks command ids; none of them can pre-empt the scheduler's own appends."""
    assert dedup.command_event(command, index) != sched
    assert dedup.malformed_command(command) != sched
    assert dedup.conflicting_command(command) != sched


@given(job_ids, st.integers(0, 64), agent_ids)
def test_a_generated_or_plain_command_id_never_meets_an_agents_id(
    command: str, index: int, agent: str
) -> None:
    """A command id without ``:`` (every one the CLI makes) leaves one ``:``; an agent's has two."""
    assert dedup.command_event(command, index) != agent
    assert dedup.malformed_command(command) != agent
    assert dedup.conflicting_command(command) != agent
    assert dedup.conflicting_command(command) != dedup.command_event(command, index)


def test_the_formats_that_other_processes_repeat_keep_their_strings() -> None:
    """A retried report, a redelivered command and a re-sent dispatch must dedup across versions."""
    assert dedup.command_event("c1", 0) == "c1:0"
    assert dedup.malformed_command("c1") == "c1:malformed"
    assert dedup.agent_job_event("j1", 2, "JobStarted") == "j1:2:JobStarted"
    assert dedup.agent_lifecycle("a1", "AgentRegistered", "r1") == "a1:AgentRegistered:r1"
    assert dedup.dispatch("j1", 2) == "j1:2"
    assert dedup.control("j1", 2, "pause", "c1") == "j1:2:pause:c1"
    assert dedup.stop_timed_out("j1", 2) == "j1:2:cancel:timed-out"
    assert dedup.command("c1") == "c1"
    progressed = JobProgressed(job="j1", at=1.0, cause="j1:2", agent="a1", attempt=2, percent=25.0)
    assert msg_id(progressed, 2) == dedup.agent_job_event("j1", 2, "JobProgressed", "25")
