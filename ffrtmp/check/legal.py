"""Whether one event is a legal next step for its job: the job decider asked again.

Every job event is the record of a command put to ``events.job.decide``. An event is legal when
the decider, given the state before it and the command the event records, yields an event of
the same kind (and, for an assignment, the same attempt). The checker therefore carries no
second copy of the lifecycle rules: what ``decide`` would not produce is illegal. Pure: no I/O.
"""

from __future__ import annotations

from typing import Final, assert_never

from events.commands import (
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
from events.enums import ControlAction, JobStatus
from events.job import JobState, decide, is_terminal
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
    JobResumed,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobTimedOut,
)

_FAILURES: Final = (JobRetrying, JobFailed)  # one decision; which one depends on retry policy
_CHECK_ID: Final = "check"
_OPERATOR: Final[dict[ControlAction, type[CancelJob | PauseJob | ResumeJob]]] = {
    ControlAction.CANCEL: CancelJob,
    ControlAction.PAUSE: PauseJob,
    ControlAction.RESUME: ResumeJob,
}


def _operator(
    kind: type[CancelJob | PauseJob | ResumeJob], event: JobEvent
) -> CancelJob | PauseJob | ResumeJob:
    return kind(id=_CHECK_ID, job=event.job, at=event.at)


def _agent_or_operator(
    agent: str, action: ControlAction, event: JobEvent
) -> ControlDone | CancelJob | PauseJob | ResumeJob:
    """A pause, resume or cancel an agent carried out, or one the scheduler decided directly."""
    if agent:
        return ControlDone(agent=agent, action=action)
    return _operator(_OPERATOR[action], event)


def recorded_command(event: JobEvent) -> JobCommand | None:  # noqa: C901, PLR0912
    """The command whose decision ``event`` records; None when no command yields it."""
    match event:
        case JobSubmitted():
            return SubmitJob(id=_CHECK_ID, job=event.job, at=event.at, spec=event.spec)
        case JobInputReceived():
            return RespondToJob(id=_CHECK_ID, job=event.job, at=event.at, approve=event.approved)
        case JobQueued() if event.by:  # an operator's retry of a failed or canceled job
            return RetryJob(id=_CHECK_ID, job=event.job, at=event.at, by=event.by)
        case JobQueued():
            return RequeueDue()
        case JobAssigned():
            return Assign(agent=event.agent, budget_s=event.budget_s, gpu=event.gpu)
        case JobRejected():
            return Reject(message=event.message)
        case JobStarted():
            return Start(agent=event.agent, attempt=event.attempt)
        case JobProgressed():
            return Progress(agent=event.agent, attempt=event.attempt, percent=event.percent)
        case JobCompleted():
            return Complete(agent=event.agent, attempt=event.attempt, results=event.results)
        case JobRetrying() | JobFailed():
            return Fail(agent=event.agent, attempt=event.attempt, reason=event.reason)
        case JobTimedOut():
            return TimeOut(attempt=event.attempt, kind=event.kind)
        case JobControlRequested():
            return _operator(_OPERATOR[event.action], event)
        case JobPaused():
            return _agent_or_operator(event.agent, ControlAction.PAUSE, event)
        case JobResumed():
            return _agent_or_operator(event.agent, ControlAction.RESUME, event)
        case JobCanceled():
            return _agent_or_operator(event.agent, ControlAction.CANCEL, event)
        case JobAwaitingInput() | CommandRefused():
            return None
        case _:
            assert_never(event)


def _same(decided: JobEvent, event: JobEvent) -> bool:
    if isinstance(event, _FAILURES):
        return isinstance(decided, _FAILURES)
    if isinstance(event, JobAssigned):
        return isinstance(decided, JobAssigned) and decided.attempt == event.attempt
    return type(decided) is type(event)


def is_legal(state: JobState, event: JobEvent) -> bool:
    """Whether the decider would have produced ``event`` from ``state``."""
    if isinstance(event, CommandRefused):
        return True  # a refusal changes nothing, in any state
    if isinstance(event, JobAwaitingInput):  # no command yields it: a prompt on a live job
        return state.status is not JobStatus.NEW and not is_terminal(state)
    command = recorded_command(event)
    if command is None:  # pragma: no cover -- the two kinds above are the only ones
        return False
    return any(_same(decided, event) for decided in decide(state, command, event.at))
