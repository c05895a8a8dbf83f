"""Commands: what someone asks of a job or an agent. Imperative names; deciding them may refuse.

``OperatorCommand`` travels on the commands stream (``<prefix>.cmd.<verb>``) and carries a
caller-chosen ``id`` that dedups it and becomes the cause of the events it produces. The other
commands never travel: they are how the scheduler and the agents put their own decisions and
reports to the same pure deciders (``events.job.decide``, ``events.agent.decide_agent``), so
every transition of a job, and every event the scheduler records about an agent, goes through
one function.
"""

from __future__ import annotations

import msgspec

from events.base import Message
from events.enums import ControlAction, FailureReason, TimeoutKind
from events.ids import check_id
from events.job_events import JobResults
from events.limits import MAX_BY, check_command_id, check_text
from events.spec import JobSpec


class OperatorCommandBase(Message, frozen=True, kw_only=True):
    """A request from a person or a program, durable on the commands stream."""

    id: str
    job: str
    at: float
    by: str = ""


class SubmitJob(OperatorCommandBase, frozen=True, kw_only=True):
    """Create the job with this spec."""

    spec: JobSpec


class CancelJob(OperatorCommandBase, frozen=True, kw_only=True):
    """Stop the job for good."""

    reason: str = ""


class PauseJob(OperatorCommandBase, frozen=True, kw_only=True):
    """Hold the job: keep it from being placed, or suspend its running process."""


class ResumeJob(OperatorCommandBase, frozen=True, kw_only=True):
    """End a pause."""


class RespondToJob(OperatorCommandBase, frozen=True, kw_only=True):
    """Answer a job's prompt; ``approve`` lets it run, otherwise it is canceled."""

    answer: str = ""
    approve: bool


class RetryJob(OperatorCommandBase, frozen=True, kw_only=True):
    """Run a failed or canceled job again: a new attempt with a fresh retry budget."""

    reason: str = ""


JobOperatorCommand = SubmitJob | CancelJob | PauseJob | ResumeJob | RespondToJob | RetryJob


class AgentCommandBase(Message, frozen=True, kw_only=True):
    """An operator's request about an agent, durable on the commands stream."""

    id: str
    agent: str
    at: float
    by: str = ""


class QuarantineAgent(AgentCommandBase, frozen=True, kw_only=True):
    """No new placements on the agent until it is cleared."""

    reason: str = ""


class ClearAgent(AgentCommandBase, frozen=True, kw_only=True):
    """Lift a quarantine (and forget the agent's failure streak)."""


class RemoveAgent(AgentCommandBase, frozen=True, kw_only=True):
    """Take the agent out of the fleet (recorded as its deregistration) until it registers again."""

    reason: str = ""


AgentOperatorCommand = QuarantineAgent | ClearAgent | RemoveAgent
OperatorCommand = JobOperatorCommand | AgentOperatorCommand


def check_command(command: OperatorCommand) -> OperatorCommand:
    """Every id and string of an operator command within ``events.limits``; else ``InvalidSpec``.

    Every door calls it before a command is sent or decided: an id out of bounds cannot even
    name the job's subjects. The spec is checked by ``events.spec.validate`` when the command
    is decided, so a bad spec becomes a ``CommandRefused`` the submitter can read.
    """
    check_command_id(command.id)
    check_text(command.by, "by", MAX_BY)
    if isinstance(command, AgentCommandBase):
        check_id(command.agent, "agent")
    else:
        check_id(command.job, "job")
    match command:
        case CancelJob() | RetryJob() | QuarantineAgent() | RemoveAgent():
            check_text(command.reason, "reason", lines=True)
        case RespondToJob():
            check_text(command.answer, "answer", lines=True)
        case _:
            pass
    return command


# Verbs name the command subjects: <prefix>.cmd.<verb>.
VERBS: dict[type[OperatorCommandBase | AgentCommandBase], str] = {
    SubmitJob: "submit",
    CancelJob: "cancel",
    PauseJob: "pause",
    ResumeJob: "resume",
    RespondToJob: "respond",
    RetryJob: "retry",
    QuarantineAgent: "quarantine",
    ClearAgent: "clear",
    RemoveAgent: "remove",
}


class Assign(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: place the job's next attempt on ``agent``."""

    agent: str
    budget_s: float
    gpu: int | None = None


class Reject(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: no agent could ever run this job."""

    message: str


class RequeueDue(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: a retry's backoff has passed."""


class TimeOut(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: the running attempt exceeded its budget or stalled."""

    attempt: int
    kind: TimeoutKind


class AgentGone(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: the agent holding the job was declared lost."""

    agent: str


class Start(msgspec.Struct, frozen=True, kw_only=True):
    """Agent: FFmpeg started for the attempt."""

    agent: str
    attempt: int


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """Agent: a progress milestone."""

    agent: str
    attempt: int
    percent: float


class Complete(msgspec.Struct, frozen=True, kw_only=True):
    """Agent: the attempt succeeded."""

    agent: str
    attempt: int
    results: JobResults


class Fail(msgspec.Struct, frozen=True, kw_only=True):
    """Agent: the attempt failed with a classified reason."""

    agent: str
    attempt: int
    reason: FailureReason
    message: str = ""


class ControlDone(msgspec.Struct, frozen=True, kw_only=True):
    """Agent: it acted on a control request; ``action`` says what actually happened."""

    agent: str
    action: ControlAction
    attempt: int | None = None  # the attempt it acted on; None from agents that predate it


InternalCommand = (
    Assign
    | Reject
    | RequeueDue
    | TimeOut
    | AgentGone
    | Start
    | Progress
    | Complete
    | Fail
    | ControlDone
)
JobCommand = JobOperatorCommand | InternalCommand


class DeclareLost(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: the agent missed heartbeats past the threshold; it was last heard at this time."""

    last_seen: float


class DeclareReturned(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: an agent it saw as lost was heard from again."""


class QuarantineFaulty(msgspec.Struct, frozen=True, kw_only=True):
    """Scheduler: jobs failed in a row on the agent while others completed elsewhere."""

    failures: int
    completed_elsewhere: int


AgentObservation = DeclareLost | DeclareReturned | QuarantineFaulty
"""The scheduler's own commands about an agent: what it observed, to be recorded."""
AgentCommand = AgentOperatorCommand | AgentObservation
