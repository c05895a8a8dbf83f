"""The job as a pure decider: ``decide`` turns a command into events, ``evolve`` folds them.

Nothing here reads a clock, a socket or a random source: ``now`` and ``cause`` are arguments.
``decide`` never raises for a command that does not apply. An operator's command is refused
with a ``CommandRefused`` event whose reason a person understands; a scheduler's or agent's
command that the job has moved past yields no events, so a stale or repeated decision is a
no-op. ``evolve`` trusts the log's order (appends are checked by ``decide`` and by optimistic
concurrency) and lets terminal states absorb everything, but not what a report claims: a
report from an agent that does not hold the current attempt changes nothing, so an agent that
writes on its own subject (all that ``events.admit`` lets it write) cannot move another's job.
"""

from __future__ import annotations

from typing import Final, TypedDict, assert_never

import msgspec

from events.commands import (
    AgentGone,
    Assign,
    CancelJob,
    Complete,
    ControlDone,
    Fail,
    JobCommand,
    OperatorCommandBase,
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
from events.enums import (
    HOLDING_STATUSES,
    STARTED_STATUSES,
    TERMINAL_STATUSES,
    TICKING_STATUSES,
    ControlAction,
    FailureReason,
    JobStatus,
)
from events.errors import InvalidSpec
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
from events.policy import DEFAULT_RETRY, RetryPolicy, retry_at
from events.spec import JobSpec, validate

S = JobStatus
DEFAULT_PROMPT: Final = "approve this job?"
DENIED: Final = "denied"
"""The reason of the cancel that a denied approval is."""
RERUNNABLE: Final = frozenset({S.FAILED, S.CANCELED})
"""Ends an operator may undo with ``RetryJob``; a completed or rejected job stays as it is."""


class JobState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A job as its events say it is now. Small on purpose: the scheduler holds one per live job.

    ``gc=False``: a state holds only immutable values and can never be part of a reference
    cycle, so the garbage collector need not track the hundreds of thousands a replay makes
    (measured: a third of the cost of folding a long log).
    """

    job: str
    status: JobStatus = S.NEW
    spec: JobSpec | None = None
    submitted_at: float = 0.0
    queued_at: float = 0.0  # when it last entered the queue: FIFO and aging
    attempt: int = 0  # assignments so far; the current attempt's number
    retries: int = 0  # retries decided so far
    agent: str = ""  # the agent holding the current attempt
    gpu: int | None = None  # the GPU the current attempt was placed on
    budget_s: float = 0.0
    assigned_at: float = 0.0
    started_at: float = 0.0
    last_progress_at: float = 0.0
    percent: float = 0.0
    retry_at: float | None = None
    resume_to: JobStatus | None = None
    requested: ControlAction | None = None  # a control request the agent has not acted on
    prompt: str = ""
    reason: FailureReason | None = None
    message: str = ""
    results: JobResults | None = None
    finished_at: float = 0.0
    paused_at: float = 0.0  # when the current pause began: paused time does not count to the budget
    first_queued_at: float = 0.0
    """When this run first entered the queue: its place (FIFO and aging), kept through retries."""


def place_at(state: JobState) -> float:
    """The queue time that orders a job: its run's first, so a retried job keeps its place."""
    return state.first_queued_at or state.queued_at


def initial(job: str) -> JobState:
    """The state of a job id no event mentions yet."""
    return JobState(job=job)


def is_terminal(state: JobState) -> bool:
    """Whether the job can no longer change."""
    return state.status in TERMINAL_STATUSES


def fold(job: str, events: list[JobEvent]) -> JobState:
    """The state after ``events``, from the start."""
    state = initial(job)
    for event in events:
        state = evolve(state, event)
    return state


_replace = msgspec.structs.replace


def _submitted(state: JobState, event: JobSubmitted) -> JobState:
    pending = event.spec.approval_required
    return _replace(
        state,
        status=S.PENDING if pending else S.QUEUED,
        spec=event.spec,
        submitted_at=event.at,
        queued_at=event.at,
        first_queued_at=0.0 if pending else event.at,
        prompt=(event.spec.approval_prompt or DEFAULT_PROMPT) if pending else "",
    )


def _retrying(state: JobState, event: JobRetrying | JobTimedOut, at: float) -> JobState:
    reason = event.reason if isinstance(event, JobRetrying) else FailureReason.TIMEOUT
    message = event.message if isinstance(event, JobRetrying) else f"timed out ({event.kind})"
    return _replace(
        state,
        status=S.RETRYING,
        retries=state.retries + 1,
        retry_at=at,
        agent="",
        requested=None,
        resume_to=None,
        reason=reason,
        message=message,
    )


def _ended(state: JobState, status: JobStatus, at: float, **changes: object) -> JobState:
    return _replace(state, status=status, finished_at=at, requested=None, **changes)


def _denial(by: str, answer: str) -> str:
    return f"{DENIED} by {by or 'operator'}: {answer}".rstrip(": ")


def _why_canceled(event: JobCanceled) -> str:
    return _denial(event.by, event.answer) if event.reason == DENIED else event.reason


def _rerun(state: JobState, event: JobQueued) -> JobState:
    """A failed or canceled job queued again: a new run with a fresh retry budget."""
    return _replace(
        initial(state.job),
        spec=state.spec,
        submitted_at=state.submitted_at,
        attempt=state.attempt,  # attempts keep counting: each one's dispatch id stays unique
        status=S.QUEUED,
        queued_at=event.at,
        first_queued_at=event.at,
    )


def foreign_report(state: JobState, event: JobEvent) -> bool:
    """Whether ``event`` is an agent's report on an attempt that agent does not hold.

    ``evolve`` ignores exactly these; readers that list what they ignore ask here.
    """
    match event:
        case JobStarted() | JobProgressed() | JobCompleted():
            return event.agent != state.agent or event.attempt != state.attempt
        case JobRetrying() | JobFailed():
            return bool(event.agent) and not _held_by(state, event)
        case JobPaused() | JobResumed() | JobCanceled():
            return bool(event.agent) and event.agent != state.agent
        case _:
            return False


def _held_by(state: JobState, event: JobRetrying | JobFailed) -> bool:
    return event.agent == state.agent and event.attempt == state.attempt


def evolve(state: JobState, event: JobEvent) -> JobState:  # noqa: C901, PLR0912
    """Fold one event into the state. Terminal states absorb all but a retry; refusals nothing."""
    if state.status in TERMINAL_STATUSES:
        if isinstance(event, JobQueued) and state.status in RERUNNABLE:
            return _rerun(state, event)
        return state
    # Cases in order of frequency in a typical history: replay tests them in turn.
    match event:
        case JobProgressed():
            if event.agent != state.agent or event.attempt != state.attempt:
                return state  # not the holder's report
            return _replace(state, percent=event.percent, last_progress_at=event.at)
        case JobStarted():
            if event.agent != state.agent or event.attempt != state.attempt:
                return state
            return _replace(state, status=S.RUNNING, started_at=event.at, last_progress_at=event.at)
        case JobAssigned():
            return _replace(
                state,
                status=S.ASSIGNED,
                agent=event.agent,
                attempt=event.attempt,
                budget_s=event.budget_s,
                gpu=event.gpu,
                assigned_at=event.at,
                percent=0.0,
            )
        case JobCompleted():  # written out: the commonest ending, kept cheap for replay
            if event.agent != state.agent or event.attempt != state.attempt:
                return state
            return _replace(
                state,
                status=S.COMPLETED,
                finished_at=event.at,
                requested=None,
                results=event.results,
                percent=100.0,
                reason=None,  # an earlier attempt's failure is history, not why it ended
                message="",
            )
        case JobSubmitted():
            return _submitted(state, event) if state.status is S.NEW else state
        case JobAwaitingInput():
            return _replace(state, status=S.PENDING, prompt=event.prompt)
        case JobInputReceived(approved=True):
            at = event.at
            return _replace(state, status=S.QUEUED, queued_at=at, first_queued_at=at, prompt="")
        case JobInputReceived():  # a denial before JobCanceled recorded it (older logs)
            message = _denial(event.by, event.answer)
            return _ended(state, S.CANCELED, event.at, message=message, prompt="")
        case JobQueued():
            return _replace(state, status=S.QUEUED, queued_at=event.at, retry_at=None)
        case JobRejected():
            return _ended(state, S.REJECTED, event.at, reason=event.reason, message=event.message)
        case JobControlRequested():
            return _replace(state, requested=event.action)
        case JobPaused() | JobResumed() | JobCanceled() if (
            event.agent and event.agent != state.agent
        ):
            return state  # an agent's control outcome on an attempt it does not hold
        case JobPaused():
            holder = state.agent if event.resume_to is S.RUNNING else ""
            return _replace(
                state,
                status=S.PAUSED,
                resume_to=event.resume_to,
                agent=holder,
                requested=None,
                paused_at=event.at,
            )
        case JobResumed():
            back = state.resume_to or S.QUEUED
            paused_for = max(0.0, event.at - state.paused_at)
            return _replace(
                state,
                status=back,
                resume_to=None,
                requested=None,
                last_progress_at=event.at,
                started_at=state.started_at + paused_for if back is S.RUNNING else state.started_at,
            )
        case JobRetrying() | JobFailed() if event.agent and not _held_by(state, event):
            return state
        case JobRetrying():
            return _retrying(state, event, event.retry_at)
        case JobTimedOut():
            if event.retry_at is not None:
                return _retrying(state, event, event.retry_at)
            msg = f"timed out ({event.kind}), no retries left"
            return _ended(state, S.FAILED, event.at, reason=FailureReason.TIMEOUT, message=msg)
        case JobFailed():
            return _ended(state, S.FAILED, event.at, reason=event.reason, message=event.message)
        case JobCanceled():
            return _ended(state, S.CANCELED, event.at, message=_why_canceled(event), prompt="")
        case CommandRefused():
            return state
        case _:
            assert_never(event)


# --- decide -------------------------------------------------------------------------------------


class _Base(TypedDict):
    """The fields every job event of one decision shares."""

    job: str
    at: float
    cause: str


def _base(state: JobState, now: float, cause: str) -> _Base:
    return {"job": state.job, "at": now, "cause": cause}


def _refuse(state: JobState, command: OperatorCommandBase, reason: str, now: float) -> JobEvent:
    return CommandRefused(
        job=state.job,
        at=now,
        cause=command.id,
        command_id=command.id,
        command=type(command).__name__,
        reason=reason,
    )


def _where(state: JobState) -> str:
    if state.status is S.NEW:
        return f"job {state.job} does not exist"
    return f"job {state.job} is {state.status}"


def _submit(state: JobState, command: SubmitJob, now: float) -> list[JobEvent]:
    if state.status is not S.NEW:
        return [_refuse(state, command, f"{_where(state)}; submit under a new id", now)]
    try:
        spec = validate(command.spec)
    except InvalidSpec as exc:
        return [_refuse(state, command, f"invalid spec: {exc}", now)]
    return [JobSubmitted(job=state.job, at=now, cause=command.id, spec=spec, by=command.by)]


def _cancel(state: JobState, command: CancelJob, now: float) -> list[JobEvent]:
    base = _base(state, now, command.id)
    if state.status is S.NEW or is_terminal(state):
        return [_refuse(state, command, f"{_where(state)}; there is nothing to cancel", now)]
    if state.status is S.RUNNING or (state.status is S.PAUSED and state.resume_to is S.RUNNING):
        if state.requested is ControlAction.CANCEL:
            return []
        return [
            JobControlRequested(
                **base, action=ControlAction.CANCEL, agent=state.agent, by=command.by
            )
        ]
    return [JobCanceled(**base, by=command.by, reason=command.reason)]


def _pause(state: JobState, command: PauseJob, now: float) -> list[JobEvent]:
    base = _base(state, now, command.id)
    match state.status:
        case S.QUEUED | S.ASSIGNED | S.RETRYING:
            return [JobPaused(**base, resume_to=S.QUEUED, by=command.by)]
        case S.RUNNING if state.requested is None:
            return [
                JobControlRequested(
                    **base, action=ControlAction.PAUSE, agent=state.agent, by=command.by
                )
            ]
        case S.RUNNING:
            why = f"{_where(state)} with a {state.requested} request outstanding; wait for it"
            return [_refuse(state, command, why, now)]
        case S.PENDING:
            why = f"{_where(state)} awaiting approval; approve or deny it instead"
            return [_refuse(state, command, why, now)]
        case S.PAUSED:
            return [_refuse(state, command, f"{_where(state)} already", now)]
        case _:
            return [_refuse(state, command, f"{_where(state)}; only live jobs can be paused", now)]


def _resume(state: JobState, command: ResumeJob, now: float) -> list[JobEvent]:
    base = _base(state, now, command.id)
    if state.status is not S.PAUSED:
        return [_refuse(state, command, f"{_where(state)}, not paused; nothing to resume", now)]
    if state.resume_to is not S.RUNNING:
        return [JobResumed(**base, by=command.by)]
    if state.requested is ControlAction.RESUME:
        return []
    return [
        JobControlRequested(**base, action=ControlAction.RESUME, agent=state.agent, by=command.by)
    ]


def _respond(state: JobState, command: RespondToJob, now: float) -> list[JobEvent]:
    if state.status is not S.PENDING:
        why = f"{_where(state)}, not awaiting an answer"
        return [_refuse(state, command, why, now)]
    base = _base(state, now, command.id)
    if not command.approve:  # one event that ends it: a reader waiting for an end sees one
        return [JobCanceled(**base, by=command.by, reason=DENIED, answer=command.answer)]
    return [JobInputReceived(**base, answer=command.answer, approved=True, by=command.by)]


def _retry(state: JobState, command: RetryJob, now: float) -> list[JobEvent]:
    if state.status not in RERUNNABLE:
        why = f"{_where(state)}; only failed or canceled jobs can be retried"
        return [_refuse(state, command, why, now)]
    reason = command.reason or f"retried by {command.by or 'an operator'} after it {state.status}"
    return [JobQueued(**_base(state, now, command.id), reason=reason, by=command.by or "operator")]


def _holds(state: JobState, agent: str, attempt: int, *statuses: JobStatus) -> bool:
    return state.status in statuses and state.agent == agent and state.attempt == attempt


def _retry_due(
    state: JobState, reason: FailureReason, now: float, policy: RetryPolicy
) -> float | None:
    """When this job's failed attempt retries, by policy and its spec; None: it fails."""
    assert state.spec is not None  # noqa: S101 -- only a submitted job holds an attempt
    return retry_at(reason, state.retries, state.spec.max_retries, now, policy)


def _failure(
    state: JobState,
    reason: FailureReason,
    message: str,
    now: float,
    cause: str,
    policy: RetryPolicy,
) -> JobEvent:
    due = _retry_due(state, reason, now, policy)
    base = _base(state, now, cause)
    agent, attempt = state.agent, state.attempt
    if due is None:
        return JobFailed(**base, agent=agent, attempt=attempt, reason=reason, message=message)
    return JobRetrying(
        **base, agent=agent, attempt=attempt, reason=reason, message=message, retry_at=due
    )


def _timeout(
    state: JobState, command: TimeOut, now: float, cause: str, policy: RetryPolicy
) -> list[JobEvent]:
    if state.status not in TICKING_STATUSES or state.attempt != command.attempt:
        return []
    due = _retry_due(state, FailureReason.TIMEOUT, now, policy)
    return [
        JobTimedOut(
            job=state.job,
            at=now,
            cause=cause,
            agent=state.agent,
            attempt=state.attempt,
            kind=command.kind,
            retry_at=due,
        )
    ]


def _control_done(state: JobState, command: ControlDone, now: float, cause: str) -> list[JobEvent]:
    base = _base(state, now, cause)
    if state.agent != command.agent:
        return []
    if command.attempt is not None and command.attempt != state.attempt:
        return []  # an answer about an older attempt on the same agent
    match command.action:
        case ControlAction.PAUSE if state.status is S.RUNNING:
            return [JobPaused(**base, resume_to=S.RUNNING, agent=command.agent)]
        case ControlAction.RESUME if state.status is S.PAUSED and state.resume_to is S.RUNNING:
            return [JobResumed(**base, agent=command.agent)]
        case ControlAction.CANCEL if state.status in STARTED_STATUSES:
            return [JobCanceled(**base, agent=command.agent, reason="canceled by operator")]
        case _:
            return []


SchedulerCommand = Assign | Reject | RequeueDue | TimeOut | AgentGone
AgentReport = Start | Progress | Complete | Fail | ControlDone


def decide(
    state: JobState,
    command: JobCommand,
    now: float,
    cause: str = "",
    policy: RetryPolicy = DEFAULT_RETRY,
) -> list[JobEvent]:
    """The events a command produces against the job's current state; see the module doc."""
    match command:
        case SubmitJob():
            return _submit(state, command, now)
        case CancelJob():
            return _cancel(state, command, now)
        case PauseJob():
            return _pause(state, command, now)
        case ResumeJob():
            return _resume(state, command, now)
        case RespondToJob():
            return _respond(state, command, now)
        case RetryJob():
            return _retry(state, command, now)
        case Assign() | Reject() | RequeueDue() | TimeOut() | AgentGone():
            return _decide_scheduler(state, command, now, cause, policy)
        case Start() | Progress() | Complete() | Fail() | ControlDone():
            return _decide_agent(state, command, now, cause, policy)
        case _:
            assert_never(command)


def _decide_scheduler(
    state: JobState, command: SchedulerCommand, now: float, cause: str, policy: RetryPolicy
) -> list[JobEvent]:
    """The scheduler's own decisions; one the job has moved past yields nothing."""
    base = _base(state, now, cause)
    match command:
        case Assign() if state.status is S.QUEUED:
            attempt = state.attempt + 1
            return [
                JobAssigned(
                    **base,
                    agent=command.agent,
                    attempt=attempt,
                    budget_s=command.budget_s,
                    gpu=command.gpu,
                    spec=state.spec,
                    retries=state.retries,
                )
            ]
        case Reject() if state.status is S.QUEUED:
            return [JobRejected(**base, message=command.message)]
        case RequeueDue() if state.status is S.RETRYING and (state.retry_at or 0.0) <= now:
            return [JobQueued(**base, reason="retry due")]
        case TimeOut():
            return _timeout(state, command, now, cause, policy)
        case AgentGone() if state.status in HOLDING_STATUSES and state.agent == command.agent:
            why = f"agent {command.agent} was lost"
            return [_failure(state, FailureReason.AGENT_LOST, why, now, cause, policy)]
        case Assign() | Reject() | RequeueDue() | AgentGone():
            return []
        case _:
            assert_never(command)


def _decide_agent(
    state: JobState, command: AgentReport, now: float, cause: str, policy: RetryPolicy
) -> list[JobEvent]:
    """An agent's report on its attempt; a report from anyone but the holder yields nothing."""
    base = _base(state, now, cause)
    match command:
        case Start() if _holds(state, command.agent, command.attempt, S.ASSIGNED):
            return [JobStarted(**base, agent=command.agent, attempt=command.attempt)]
        case Progress() if _holds(state, command.agent, command.attempt, S.RUNNING):
            return [
                JobProgressed(
                    **base, agent=command.agent, attempt=command.attempt, percent=command.percent
                )
            ]
        case Complete() if _holds(state, command.agent, command.attempt, *STARTED_STATUSES):
            return [
                JobCompleted(
                    **base, agent=command.agent, attempt=command.attempt, results=command.results
                )
            ]
        case Fail() if _holds(state, command.agent, command.attempt, *HOLDING_STATUSES):
            return [_failure(state, command.reason, command.message, now, cause, policy)]
        case ControlDone():
            return _control_done(state, command, now, cause)
        case Start() | Progress() | Complete() | Fail():
            return []
        case _:
            assert_never(command)
