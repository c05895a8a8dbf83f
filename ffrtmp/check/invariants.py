"""The log's invariants, checked by one pure fold over ``(seq, subject, event)`` records.

ffrtmp promises that no job is lost, none runs twice and none is stuck, whatever dies. This
module reads a whole log (already decoded; the reading is the caller's) and names every place
where that promise is broken, as ``Violation`` values:

- ``illegal``: an event the job decider would not have produced from the state before it
  (``ffrtmp.check.legal``), including any change after a terminal state;
- ``completed_twice``: a second ``JobCompleted`` for one job;
- ``wrong_agent``: an attempt started, reported or completed by an agent that does not hold it;
- ``out_of_order``: a sequence that does not increase, or a report about an attempt that was
  not assigned yet (``JobStarted`` before its ``JobAssigned``);
- ``set_aside``: a stored message no reader applies (``events.admit``): it does not decode, or
  its writer may not write it (an agent writing for another agent, or the scheduler's events);
- ``stuck``: a submitted job that is not terminal and has no live work (below);
- ``not_terminal``: in a quiescent check (the end of a finished run), any submitted job that is
  not terminal.

Live work, for a job that is not terminal, at time ``now`` (the log's clock, an argument):
``pending`` and ``paused`` wait for an operator; ``queued`` waits for placement; ``retrying``
has a due time that is not more than ``grace_s`` past; ``assigned`` and ``running`` are held by
an agent whose own events say it is online, or that went away (lost, deregistered) less than
``grace_s`` ago (the scheduler retries its jobs on its next tick). Anything else is stuck.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Final

import msgspec

from events.admit import job_of
from events.agent import AgentState, evolve_agent, initial_agent
from events.base import AgentEventBase, JobEventBase, SetAside, Unknown
from events.codec import Decoded
from events.enums import TICKING_STATUSES, AgentStatus, JobStatus
from events.job import JobState, evolve, initial, is_terminal
from events.job_events import JobCompleted, JobEvent, JobProgressed, JobStarted
from ffrtmp.check.legal import is_legal

S = JobStatus
DEFAULT_GRACE_S: Final = 60.0
_WAITING: Final = frozenset({S.PENDING, S.PAUSED, S.QUEUED})
_REPORTS: Final = (JobStarted, JobProgressed, JobCompleted)


class Kind(StrEnum):
    """What kind of promise a violation breaks."""

    ILLEGAL = "illegal"
    COMPLETED_TWICE = "completed_twice"
    WRONG_AGENT = "wrong_agent"
    OUT_OF_ORDER = "out_of_order"
    STUCK = "stuck"
    NOT_TERMINAL = "not_terminal"
    PROJECTION = "projection"
    SET_ASIDE = "set_aside"


class Record(msgspec.Struct, frozen=True):
    """One stored event: its stream sequence, subject ("" when the reader does not say) and body."""

    seq: int
    subject: str
    event: Decoded


class Violation(msgspec.Struct, frozen=True, kw_only=True):
    """One broken invariant, named by job (or agent) and the sequence where it shows."""

    kind: Kind
    job: str
    seq: int
    message: str

    def line(self) -> str:
        """One line for a person: where, what, why."""
        return f"job {self.job} seq {self.seq}: {self.kind}: {self.message}"


class CheckSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How strict the end-of-log check is."""

    now: float | None = None  # the clock for liveness; None: the latest event's time
    grace_s: float = DEFAULT_GRACE_S
    quiescent: bool = False  # nothing runs any more: every submitted job must be terminal


class Report(msgspec.Struct, kw_only=True):
    """What a check found, with counts that say how much it looked at."""

    events: int = 0
    jobs: int = 0
    agents: int = 0
    unknown: int = 0
    statuses: dict[str, int] = msgspec.field(default_factory=dict)
    violations: list[Violation] = msgspec.field(default_factory=list)
    dead_letters: int | None = None  # messages set aside, stored; None: no stream (an old farm)

    @property
    def ok(self) -> bool:
        """Whether no invariant is broken."""
        return not self.violations


class _Job(msgspec.Struct):
    state: JobState
    last_seq: int = 0


class Checker:
    """The fold: feed records in stream order (``add``), then ``finish``."""

    def __init__(self, settings: CheckSettings | None = None) -> None:
        """Start from an empty log."""
        self.settings = settings or CheckSettings()
        self.report = Report()
        self._jobs: dict[str, _Job] = {}
        self._agents: dict[str, AgentState] = {}
        self._gone_at: dict[str, float] = {}  # agent -> when it was lost or deregistered
        self._last_seq = 0
        self._latest = 0.0

    def add(self, record: Record) -> None:
        """Fold one record, noting every violation it shows."""
        self.report.events += 1
        event = record.event
        if isinstance(event, Unknown):
            self.report.unknown += 1
            return
        if isinstance(event, SetAside):
            job = job_of(event.subject) or "?"
            self._flag(Kind.SET_ASIDE, job, record.seq, f"{event.kind}: {event.reason}")
            return
        self._latest = max(self._latest, event.at)
        if isinstance(event, AgentEventBase):
            self._agent(event)
        elif isinstance(event, JobEventBase):
            self._job(record.seq, event)
        self._last_seq = max(self._last_seq, record.seq)

    def _agent(self, event: AgentEventBase) -> None:
        before = self._agents.get(event.agent) or initial_agent(event.agent)
        after = evolve_agent(before, event)  # type: ignore[arg-type]
        self._agents[event.agent] = after
        if after.status in {AgentStatus.LOST, AgentStatus.OFFLINE}:
            self._gone_at.setdefault(event.agent, event.at)
        else:
            self._gone_at.pop(event.agent, None)

    def _job(self, seq: int, event: JobEventBase) -> None:
        job = self._jobs.get(event.job)
        if job is None:
            job = self._jobs[event.job] = _Job(initial(event.job))
        if seq <= job.last_seq:
            why = f"sequence {seq} after {job.last_seq} on the same job"
            self._flag(Kind.OUT_OF_ORDER, event.job, seq, why)
        job.last_seq = max(job.last_seq, seq)
        je: JobEvent = event  # type: ignore[assignment]
        if not is_legal(job.state, je):
            self._flag(_diagnose(job.state, je), event.job, seq, _describe(job.state, je))
        job.state = evolve(job.state, je)

    def _flag(self, kind: Kind, job: str, seq: int, message: str) -> None:
        self.report.violations.append(Violation(kind=kind, job=job, seq=seq, message=message))

    def finish(self) -> Report:
        """Check every job's end state; return the report."""
        now = self.settings.now if self.settings.now is not None else self._latest
        report = self.report
        report.agents = len(self._agents)
        for name, job in self._jobs.items():
            state = job.state
            if state.status is S.NEW:
                continue  # only refusals: never a job
            report.jobs += 1
            report.statuses[state.status] = report.statuses.get(state.status, 0) + 1
            why = self._not_live(state, now)
            if why is not None:
                self._flag(why[0], name, job.last_seq, why[1])
        return report

    def _not_live(self, state: JobState, now: float) -> tuple[Kind, str] | None:
        """Why a job has no live work, or None when it is terminal or has some."""
        if is_terminal(state):
            return None
        if self.settings.quiescent:
            return Kind.NOT_TERMINAL, f"{state.status} at the end of a finished run"
        grace = self.settings.grace_s
        if state.status in _WAITING:
            return None
        if state.status is S.RETRYING:
            due = state.retry_at if state.retry_at is not None else 0.0
            if now - due <= grace:
                return None
            return Kind.STUCK, f"retrying, due {now - due:.0f} s ago, never queued again"
        if state.status in TICKING_STATUSES:
            gone = self._gone_at.get(state.agent)
            if self._agents.get(state.agent) is None:
                return Kind.STUCK, f"{state.status} on {state.agent}, which never registered"
            if gone is None or now - gone <= grace:
                return None
            return Kind.STUCK, f"{state.status} on {state.agent}, gone {now - gone:.0f} s ago"
        return Kind.STUCK, f"{state.status} with nothing to move it"  # pragma: no cover


def _diagnose(state: JobState, event: JobEvent) -> Kind:
    """Name an illegal event more precisely where the rules allow."""
    if isinstance(event, JobCompleted) and state.status is S.COMPLETED:
        return Kind.COMPLETED_TWICE
    if isinstance(event, _REPORTS):
        if event.attempt > state.attempt:
            return Kind.OUT_OF_ORDER
        if state.agent and event.agent != state.agent and event.attempt == state.attempt:
            return Kind.WRONG_AGENT
    return Kind.ILLEGAL


def _describe(state: JobState, event: JobEvent) -> str:
    name = type(event).__name__
    holder = f" held by {state.agent} attempt {state.attempt}" if state.agent else ""
    by = getattr(event, "agent", "")
    from_ = f" from {by}" if by else ""
    attempt = getattr(event, "attempt", None)
    of = f" (attempt {attempt})" if attempt is not None else ""
    return f"{name}{from_}{of} while {state.status}{holder}"


def check(records: Iterable[Record], settings: CheckSettings | None = None) -> Report:
    """Check a whole log, given in stream order."""
    checker = Checker(settings)
    for record in records:
        checker.add(record)
    return checker.finish()
