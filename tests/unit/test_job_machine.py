"""The job decider under any sequence of commands, decisions and agent reports.

A hypothesis state machine drives a few jobs with operator commands, scheduler decisions and
agent reports (including stale and foreign ones) and checks, after every step, that each job
is in a valid state reached by a transition the lifecycle allows, that terminal states absorb,
and that replaying the recorded events gives the live state.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from events import job as machine
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
from events.enums import TERMINAL_STATUSES, ControlAction, FailureReason, JobStatus, TimeoutKind
from events.job_events import (
    CommandRefused,
    JobAssigned,
    JobAwaitingInput,
    JobCanceled,
    JobCompleted,
    JobControlRequested,
    JobEvent,
    JobFailed,
    JobInputReceived,
    JobPaused,
    JobProgressed,
    JobQueued,
    JobRejected,
    JobResults,
    JobResumed,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobTimedOut,
)
from tests.strategies import specs

S = JobStatus
LIVE = {S.PENDING, S.QUEUED, S.ASSIGNED, S.RUNNING, S.PAUSED, S.RETRYING}
JOBS = ("a", "b", "c")
AGENTS = ("ag1", "ag2")

# The lifecycle of DESIGN.md as a plain table: (from, event type) -> statuses it may lead to.
ALLOWED: dict[tuple[JobStatus, type[Any]], set[JobStatus]] = {
    (S.NEW, JobSubmitted): {S.QUEUED, S.PENDING},
    (S.PENDING, JobInputReceived): {S.QUEUED, S.CANCELED},
    (S.PENDING, JobCanceled): {S.CANCELED},
    (S.QUEUED, JobAssigned): {S.ASSIGNED},
    (S.QUEUED, JobRejected): {S.REJECTED},
    (S.QUEUED, JobPaused): {S.PAUSED},
    (S.QUEUED, JobCanceled): {S.CANCELED},
    (S.QUEUED, JobAwaitingInput): {S.PENDING},
    (S.ASSIGNED, JobStarted): {S.RUNNING},
    (S.ASSIGNED, JobPaused): {S.PAUSED},
    (S.ASSIGNED, JobCanceled): {S.CANCELED},
    (S.ASSIGNED, JobRetrying): {S.RETRYING},
    (S.ASSIGNED, JobFailed): {S.FAILED},
    (S.ASSIGNED, JobTimedOut): {S.RETRYING, S.FAILED},
    (S.RUNNING, JobProgressed): {S.RUNNING},
    (S.RUNNING, JobControlRequested): {S.RUNNING},
    (S.RUNNING, JobPaused): {S.PAUSED},
    (S.RUNNING, JobCompleted): {S.COMPLETED},
    (S.RUNNING, JobRetrying): {S.RETRYING},
    (S.RUNNING, JobFailed): {S.FAILED},
    (S.RUNNING, JobTimedOut): {S.RETRYING, S.FAILED},
    (S.RUNNING, JobCanceled): {S.CANCELED},
    (S.PAUSED, JobResumed): {S.QUEUED, S.RUNNING},
    (S.PAUSED, JobControlRequested): {S.PAUSED},
    (S.PAUSED, JobCanceled): {S.CANCELED},
    (S.PAUSED, JobRetrying): {S.RETRYING},
    (S.PAUSED, JobFailed): {S.FAILED},
    (S.PAUSED, JobCompleted): {S.COMPLETED},  # FFmpeg ended just as it was suspended
    (S.RETRYING, JobQueued): {S.QUEUED},
    (S.RETRYING, JobPaused): {S.PAUSED},
    (S.RETRYING, JobCanceled): {S.CANCELED},
    (S.FAILED, JobQueued): {S.QUEUED},  # an operator's RetryJob
    (S.CANCELED, JobQueued): {S.QUEUED},
}
TERMINAL_EVENTS = (JobCompleted, JobFailed, JobCanceled, JobRejected)

jobs = st.sampled_from(JOBS)
agents = st.sampled_from(AGENTS)
reasons = st.sampled_from(list(FailureReason))


class JobLifecycle(RuleBasedStateMachine):
    """Drive three jobs with everything that can happen to them."""

    def __init__(self) -> None:
        """Start with three unknown job ids and a clock."""
        super().__init__()
        self.now = 1_800_000_000.0
        self.serial = 0
        self.states = {job: machine.initial(job) for job in JOBS}
        self.logs: dict[str, list[JobEvent]] = {job: [] for job in JOBS}

    def _cmd_id(self) -> str:
        self.serial += 1
        return f"c{self.serial}"

    def _apply(self, job: str, command: JobCommand) -> list[JobEvent]:
        self.now += 1.0
        before = self.states[job]
        produced = machine.decide(before, command, self.now, cause="test")
        state = before
        for event in produced:
            after = machine.evolve(state, event)
            self._check_transition(state, event, after)
            state = after
        self.states[job] = state
        self.logs[job].extend(produced)
        if before.status in TERMINAL_STATUSES and not isinstance(command, RetryJob):
            assert state == before
            assert all(isinstance(e, CommandRefused) for e in produced)
        return produced

    @staticmethod
    def _check_transition(
        before: machine.JobState, event: JobEvent, after: machine.JobState
    ) -> None:
        if isinstance(event, CommandRefused):
            assert after == before
            assert event.reason
            return
        allowed = ALLOWED.get((before.status, type(event)))
        assert allowed is not None, f"{type(event).__name__} from {before.status}"
        assert after.status in allowed

    # operator commands
    @rule(job=jobs, spec=specs)
    def submit(self, job: str, spec: Any) -> None:
        """Submit (again, possibly: a second submit is refused)."""
        existed = self.states[job].status is not S.NEW
        command_id = self._cmd_id()
        produced = self._apply(job, SubmitJob(id=command_id, job=job, at=self.now, spec=spec))
        assert len(produced) == 1
        assert produced[0].cause == command_id
        assert isinstance(produced[0], CommandRefused) == existed

    @rule(job=jobs)
    def cancel(self, job: str) -> None:
        """Cancel whatever state the job is in."""
        self._apply(job, CancelJob(id=self._cmd_id(), job=job, at=self.now))

    @rule(job=jobs)
    def pause(self, job: str) -> None:
        """Pause whatever state the job is in."""
        self._apply(job, PauseJob(id=self._cmd_id(), job=job, at=self.now))

    @rule(job=jobs)
    def resume(self, job: str) -> None:
        """Resume whatever state the job is in."""
        self._apply(job, ResumeJob(id=self._cmd_id(), job=job, at=self.now))

    @rule(job=jobs, approve=st.booleans())
    def respond(self, job: str, approve: bool) -> None:
        """Answer a job's prompt, whether or not it has one."""
        was_pending = self.states[job].status is S.PENDING
        self._apply(job, RespondToJob(id=self._cmd_id(), job=job, at=self.now, approve=approve))
        if was_pending:
            assert self.states[job].status is (S.QUEUED if approve else S.CANCELED)

    @rule(job=jobs)
    def retry(self, job: str) -> None:
        """Retry: a failed or canceled job queues again, anything else is refused."""
        before = self.states[job]
        (event,) = self._apply(job, RetryJob(id=self._cmd_id(), job=job, at=self.now))
        if before.status in {S.FAILED, S.CANCELED}:
            assert isinstance(event, JobQueued)
            assert self.states[job].status is S.QUEUED
            assert self.states[job].attempt == before.attempt
            assert self.states[job].retries == 0
        else:
            assert isinstance(event, CommandRefused)

    # scheduler decisions
    @rule(job=jobs, agent=agents)
    def assign(self, job: str, agent: str) -> None:
        """Place the job; only a queued job gets a new attempt."""
        before = self.states[job]
        self._apply(job, Assign(agent=agent, budget_s=60.0))
        if before.status is S.QUEUED:
            assert self.states[job].attempt == before.attempt + 1
            assert self.states[job].agent == agent

    @rule(job=jobs)
    def reject(self, job: str) -> None:
        """Reject as a capability mismatch."""
        self._apply(job, Reject(message="no agent has h264_nvenc"))

    @rule(job=jobs)
    def requeue_due(self, job: str) -> None:
        """Let a retry's backoff pass."""
        due = self.states[job].retry_at
        if due is not None:
            self.now = max(self.now, due)
        self._apply(job, RequeueDue())

    @rule(job=jobs, kind=st.sampled_from(list(TimeoutKind)), stale=st.booleans())
    def time_out(self, job: str, kind: TimeoutKind, stale: bool) -> None:
        """Time out the current attempt, or a stale one (which changes nothing)."""
        attempt = self.states[job].attempt - (1 if stale else 0)
        before = self.states[job]
        produced = self._apply(job, TimeOut(attempt=attempt, kind=kind))
        if stale:
            assert produced == []
            assert self.states[job] == before

    @rule(job=jobs, agent=agents)
    def agent_gone(self, job: str, agent: str) -> None:
        """Declare an agent lost."""
        self._apply(job, AgentGone(agent=agent))

    # agent reports, from the holder or from a stranger, for the current or a stale attempt
    def _report_args(self, job: str, agent: str, stale: bool) -> tuple[str, int]:
        return agent, self.states[job].attempt - (1 if stale else 0)

    @rule(job=jobs, agent=agents, stale=st.booleans())
    def start(self, job: str, agent: str, stale: bool) -> None:
        """Report FFmpeg started."""
        who, attempt = self._report_args(job, agent, stale)
        self._zombie_safe(job, Start(agent=who, attempt=attempt), who, attempt)

    @rule(job=jobs, agent=agents, percent=st.floats(0, 100))
    def progress(self, job: str, agent: str, percent: float) -> None:
        """Report a milestone."""
        who, attempt = self._report_args(job, agent, stale=False)
        self._zombie_safe(job, Progress(agent=who, attempt=attempt, percent=percent), who, attempt)

    @rule(job=jobs, agent=agents, stale=st.booleans())
    def complete(self, job: str, agent: str, stale: bool) -> None:
        """Report success."""
        who, attempt = self._report_args(job, agent, stale)
        results = JobResults(wall_s=1.0, frames=30)
        self._zombie_safe(job, Complete(agent=who, attempt=attempt, results=results), who, attempt)

    @rule(job=jobs, agent=agents, reason=reasons)
    def fail(self, job: str, agent: str, reason: FailureReason) -> None:
        """Report a classified failure."""
        who, attempt = self._report_args(job, agent, stale=False)
        self._zombie_safe(job, Fail(agent=who, attempt=attempt, reason=reason), who, attempt)

    @rule(job=jobs, agent=agents, action=st.sampled_from(list(ControlAction)))
    def control_done(self, job: str, agent: str, action: ControlAction) -> None:
        """Report having paused, resumed or canceled the process."""
        before = self.states[job]
        produced = self._apply(job, ControlDone(agent=agent, action=action))
        if agent != before.agent:
            assert produced == []

    def _zombie_safe(self, job: str, command: JobCommand, agent: str, attempt: int) -> None:
        before = self.states[job]
        produced = self._apply(job, command)
        if agent != before.agent or attempt != before.attempt:
            assert produced == [], "a report from a non-holder must change nothing"

    # invariants
    @invariant()
    def states_are_consistent(self) -> None:
        """Each live status carries the facts it implies."""
        for state in self.states.values():
            if state.status in {S.ASSIGNED, S.RUNNING}:
                assert state.agent
                assert state.attempt >= 1
            if state.status in {S.QUEUED, S.PENDING, S.RETRYING}:
                assert not state.agent
            if state.status is S.PAUSED:
                assert state.resume_to in {S.QUEUED, S.RUNNING}
                assert bool(state.agent) == (state.resume_to is S.RUNNING)
            if state.status is S.RETRYING:
                assert state.retry_at is not None
            if state.status is S.COMPLETED:
                assert state.results is not None
            if state.spec is not None:
                assert state.retries <= state.spec.max_retries

    @invariant()
    def replay_equals_live(self) -> None:
        """Folding the recorded events from scratch gives the live state, every time."""
        for job, events in self.logs.items():
            assert machine.fold(job, events) == self.states[job]
            assert machine.fold(job, events) == machine.fold(job, list(events))

    @invariant()
    def at_most_one_ending_per_run(self) -> None:
        """No job ends twice without an operator's retry between, and none completes twice."""
        for events in self.logs.values():
            runs: list[int] = [0]
            for event in events:
                if isinstance(event, JobQueued) and event.by:
                    runs.append(0)
                runs[-1] += isinstance(event, TERMINAL_EVENTS)
            assert all(ends <= 1 for ends in runs)
            assert sum(isinstance(e, JobCompleted) for e in events) <= 1

    @precondition(lambda self: any(s.status in LIVE for s in self.states.values()))
    @invariant()
    def live_jobs_can_still_end(self) -> None:
        """Every live job can still be canceled by an operator: nothing is stuck for good."""
        for job, state in self.states.items():
            if state.status in LIVE:
                produced = machine.decide(state, CancelJob(id="probe", job=job, at=0.0), self.now)
                if state.requested is ControlAction.CANCEL:
                    assert produced == []  # already asked: the agent's report ends it
                    continue
                assert produced
                assert not isinstance(produced[0], CommandRefused)


TestJobLifecycle = JobLifecycle.TestCase
TestJobLifecycle.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
