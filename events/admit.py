"""The one door from a stored message to an event a reader may apply; it never raises.

The log cannot delete, so whatever any client managed to store must be readable forever. Every
reader (scheduler, projector, exporter, CLI, ``ffrtmp check``, the benchmarks) turns a stored
``(subject, bytes)`` into an event here and nowhere else. A message that does not decode, or
that its subject's writer may not write, becomes ``SetAside``: a no-op every fold skips and
every reader counts. A newer type or version stays ``Unknown`` (the future, not a fault).

Only the writer token in the subject identifies a writer (NATS permissions pin each agent to
its own token), so what an event claims is bound to where it was stored:

- a job event lives on ``<prefix>.evt.job.<job>.<writer>`` and names that ``<job>``;
- an assignment may also live on ``<prefix>.evt.job.<job>.sched.<agent>`` (the scheduler's,
  read by that agent as its dispatch), and then names that ``<agent>``;
- an agent event lives on ``<prefix>.evt.agent.<agent>`` and names that ``<agent>``;
- a writer other than the scheduler writes only reports on an attempt (started, progressed,
  completed, failed, paused, resumed, canceled) that name the writer itself as the agent.

Whether that agent holds the attempt depends on the job's state, so that half of the rule is
the fold's: ``events.job.evolve`` ignores a report from anyone but the holder.
"""

from __future__ import annotations

from typing import Final

from events.base import AgentEventBase, JobEventBase, SetAside
from events.codec import Decoded, decode_event
from events.errors import MalformedMessage
from events.job_events import (
    JobAssigned,
    JobCanceled,
    JobCompleted,
    JobFailed,
    JobPaused,
    JobProgressed,
    JobResumed,
    JobRetrying,
    JobStarted,
)
from events.subjects import SCHEDULER_WRITER, parse_job_subject

AGENT_REPORTS: Final = (
    JobStarted,
    JobProgressed,
    JobCompleted,
    JobRetrying,
    JobFailed,
    JobPaused,
    JobResumed,
    JobCanceled,
)
"""The job events an agent may write, each naming the agent that acted."""
_REPORT_TYPES: Final = frozenset(AGENT_REPORTS)
_ASSIGNED_TO: Final = f"{SCHEDULER_WRITER}."
"""An assignment's subject ends ``sched.<agent>``: the agent it names, its reader."""
FORGED: Final = "forged"
"""``SetAside.kind`` of an event that decodes but was stored where its writer may not write it."""
KEPT_BYTES: Final = 256
"""How much of a set-aside message a reader keeps to show; the log keeps it whole."""


def read_event(subject: str, data: bytes) -> Decoded:
    """The event stored on ``subject``, ``Unknown`` from the future, else ``SetAside``."""
    try:
        event = decode_event(data)
    except MalformedMessage as exc:
        return SetAside(f"does not decode: {exc.reason}", bytes(data[:KEPT_BYTES]), subject)
    why = _job(subject, event) if isinstance(event, JobEventBase) else inadmissible(subject, event)
    if why is None:
        return event
    return SetAside(why, bytes(data[:KEPT_BYTES]), subject, FORGED)


def inadmissible(subject: str, event: Decoded) -> str | None:
    """Why ``event`` may not be stored on ``subject``, or None when it may."""
    if isinstance(event, JobEventBase):
        return _job(subject, event)
    if isinstance(event, AgentEventBase):
        head, _, agent = subject.rpartition(".")
        if not head.endswith(".evt.agent"):
            return f"{type(event).__name__} stored on {subject}, not an agent subject"
        if event.agent != agent:
            return f"{type(event).__name__} names agent {event.agent!r}, stored on {subject}"
    return None


def _job(subject: str, event: JobEventBase) -> str | None:
    # Replay runs this once per event: the admissible cases first, the reasons only when needed.
    # A prefix is one token, so the first ".evt.job." ends it.
    _, found, rest = subject.partition(".evt.job.")
    job, _, writer = rest.partition(".")
    if found and job == event.job:
        if writer == SCHEDULER_WRITER:
            return None
        if type(event) in _REPORT_TYPES and event.agent == writer:  # type: ignore[attr-defined]
            return None
        if type(event) is JobAssigned and writer == _ASSIGNED_TO + event.agent:
            return None
    return _job_refused(subject, event, job, writer)


def _job_refused(subject: str, event: JobEventBase, job: str, writer: str) -> str:
    """Why ``event`` may not be stored on the job subject ``subject``."""
    name = type(event).__name__
    if writer.startswith(_ASSIGNED_TO) and "." not in writer.removeprefix(_ASSIGNED_TO):
        if type(event) is not JobAssigned:
            return f"{name} stored on {subject}: only an assignment goes there"
        agent = getattr(event, "agent", "")
        return f"JobAssigned to {agent!r} stored on {subject}, another agent's subject"
    if not writer or "." in writer:
        return f"{name} stored on {subject}, not a job subject"
    if event.job != job:
        return f"{name} names job {event.job!r}, stored on job {job}'s subject"
    if type(event) not in _REPORT_TYPES:
        return f"{name} written by {writer}: only the scheduler writes it"
    agent = getattr(event, "agent", "")
    return f"{name} names agent {agent!r} but was written by {writer}"


def job_of(subject: str) -> str:
    """The job token of a job event subject, "" for any other subject."""
    parsed = parse_job_subject(subject)
    return parsed[0] if parsed else ""
