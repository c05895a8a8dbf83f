"""The projection's pure core: a batch of events folded into the rows it changes.

No I/O, no clock: ``Fold.apply`` takes ``(seq, event)`` pairs and returns ``Changes``, the rows
to write; ``projections.runner`` writes them and the checkpoint in one transaction. Job state is
``events.job.evolve`` and agent state ``events.agent.evolve_agent``, so the read models and the
scheduler agree on what a state is. The fold keeps the state of every job that may still change
(and only the ids of completed and rejected ones, which absorb every later event) so a batch
needs no reads from the database.

Derived timings: ``wait_s`` is the time a job waited in the queue before its first assignment
(approval time excluded); ``run_s`` is the completing attempt's processing time, start to end,
paused time excluded (``evolve`` moves ``started_at`` forward by each pause).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from events.agent import AgentState, evolve_agent, initial_agent
from events.base import AgentEventBase, SetAside, Unknown
from events.codec import Decoded
from events.enums import TERMINAL_STATUSES, JobStatus
from events.job import JobState, evolve, foreign_report, initial
from events.job_events import JobAssigned, JobCompleted, JobEvent, JobResults, JobSubmitted
from events.scenarios import SCENARIOS

Row = tuple[object, ...]
Item = tuple[int, Decoded]
"""A stream sequence and what its message reads as (``events.admit.read_event``)."""

_NO_RESULTS: Final = (None,) * len(JobResults.__struct_fields__)
_FAILED: Final = frozenset({JobStatus.RETRYING, JobStatus.FAILED, JobStatus.REJECTED})
ABSORBING: Final = frozenset({JobStatus.COMPLETED, JobStatus.REJECTED})
"""Ends no event reopens: a job there keeps no fold state. A failed or canceled job may be
queued again by an operator's retry, so its state is kept like a live job's."""


class Tracked(msgspec.Struct, kw_only=True, gc=False):
    """A job's fold state plus what the read model keeps that ``JobState`` does not.

    Mutable on purpose: the fold updates it in place, one object per job, instead of copying
    it on every event (a sixth of the fold's cost). It holds only immutable values, so no
    reference cycle can form and the garbage collector need not track it.
    """

    state: JobState
    submitted_by: str = ""
    first_assigned_at: float = 0.0
    wait_s: float | None = None
    last_seq: int = 0
    updated_at: float = 0.0


class Changes:
    """What one batch changed: rows to write, rows to replace, counts for the checkpoint."""

    __slots__ = (
        "agents",
        "events",
        "jobs",
        "last_seq",
        "malformed",
        "replaced_agents",
        "replaced_jobs",
        "results",
        "set_aside",
        "transitions",
        "unknown",
    )

    def __init__(self) -> None:
        """Nothing changed yet."""
        self.jobs: dict[str, Tracked] = {}
        self.replaced_jobs: set[str] = set()  # jobs whose stored row must go first
        self.transitions: list[Row] = []
        self.results: list[Row] = []
        self.set_aside: list[Row] = []  # ``set_aside_events`` rows
        self.agents: dict[str, tuple[AgentState, int]] = {}
        self.replaced_agents: set[str] = set()
        self.events = 0
        self.unknown = 0
        self.malformed = 0
        self.last_seq = 0

    def done_rows(self) -> list[Row]:
        """The ``_jobs_done`` rows: changed jobs that ended for good."""
        return [
            job_row(tracked) for tracked in self.jobs.values() if tracked.state.status in ABSORBING
        ]

    def live_rows(self) -> list[Row]:
        """The ``_jobs_live`` rows: changed jobs that may change again, with their fold state."""
        return [
            (*job_row(tracked), _STATE.encode(tracked))
            for tracked in self.jobs.values()
            if tracked.state.status not in ABSORBING
        ]

    def agent_rows(self) -> list[Row]:
        """The ``agents`` rows of every changed agent."""
        return [agent_row(state, seq) for state, seq in self.agents.values()]

    def agent_fold_rows(self) -> list[Row]:
        """The ``_agent_fold`` rows of every changed agent."""
        return [(agent, _STATE.encode(state)) for agent, (state, _) in self.agents.items()]


_STATE: Final = msgspec.json.Encoder()
_TRACKED: Final = msgspec.json.Decoder(Tracked)


_AGENT: Final = msgspec.json.Decoder(AgentState)


def decode_tracked(data: bytes) -> Tracked:
    """A ``_jobs_live`` row's ``_state``, as ``Changes.live_rows`` wrote it."""
    return _TRACKED.decode(data)


def decode_agent(data: bytes) -> AgentState:
    """An ``_agent_fold`` row's state, as ``Changes.agent_fold_rows`` wrote it."""
    return _AGENT.decode(data)


class Fold:
    """The projection's memory: states of jobs that may change, ids of those that cannot."""

    def __init__(
        self,
        live: dict[str, Tracked] | None = None,
        done: set[str] | None = None,
        agents: dict[str, AgentState] | None = None,
    ) -> None:
        """Resume from what a database holds, or start empty."""
        self.live = live or {}
        self.done = done or set()
        self.agents = agents or {}

    def apply(self, batch: Iterable[Item]) -> Changes:
        """Fold a batch in order; the rows it changes. Unknown and malformed are counted."""
        changes = Changes()
        for seq, event in batch:
            changes.events += 1
            changes.last_seq = seq
            if isinstance(event, AgentEventBase):
                self._agent(changes, seq, event)
            elif isinstance(event, Unknown):
                changes.unknown += 1
                reason = f"type {event.type} v{event.v} is not known to this projector"
                changes.set_aside.append((seq, "unknown", event.type, reason))
            elif isinstance(event, SetAside):
                changes.malformed += 1
                changes.set_aside.append((seq, event.kind, None, event.reason))
            else:
                self._job(changes, seq, event)
        return changes

    def _job(self, changes: Changes, seq: int, event: JobEvent) -> None:
        job = event.job
        if job in self.done:
            return  # completed or rejected: absorbs everything
        tracked = self.live.get(job)
        before = tracked.state if tracked is not None else initial(job)
        after = evolve(before, event)
        if after is before:
            if foreign_report(before, event) and before.status not in TERMINAL_STATUSES:
                why = f"{type(event).__name__} from an agent that does not hold the attempt"
                changes.set_aside.append((seq, "not_holder", type(event).__name__, why))
            return
        if after.status is not before.status:
            changes.transitions.append(transition_row(seq, before, after, event))
        if isinstance(event, JobCompleted) and after.status is JobStatus.COMPLETED:
            changes.results.append(result_row(seq, after, event))
        if after.status is JobStatus.NEW:
            return  # never submitted: nothing to store
        if tracked is None:
            tracked = Tracked(state=after)
        else:
            if job not in changes.jobs:
                changes.replaced_jobs.add(job)  # stored before this batch: delete, insert
            tracked.state = after
        _track(tracked, before, event, seq)
        changes.jobs[job] = tracked
        if after.status in ABSORBING:
            self.live.pop(job, None)
            self.done.add(job)
        else:
            self.live[job] = tracked

    def _agent(self, changes: Changes, seq: int, event: AgentEventBase) -> None:
        old = self.agents.get(event.agent)
        if old is not None and event.agent not in changes.agents:
            changes.replaced_agents.add(event.agent)
        state = evolve_agent(old or initial_agent(event.agent), event)  # type: ignore[arg-type]
        self.agents[event.agent] = state
        changes.agents[event.agent] = (state, seq)


def _track(tracked: Tracked, before: JobState, event: JobEvent, seq: int) -> None:
    """Note in ``tracked`` what ``event`` tells beyond the job's state."""
    tracked.last_seq = seq
    tracked.updated_at = event.at
    if isinstance(event, JobSubmitted):
        tracked.submitted_by = event.by
    elif isinstance(event, JobAssigned) and not tracked.first_assigned_at:
        tracked.first_assigned_at = event.at
        tracked.wait_s = max(0.0, event.at - before.queued_at)


def _time(seconds: float | None) -> float | None:
    """A time column: unset (0) is NULL."""
    return seconds or None


def _results(results: JobResults | None) -> Row:
    if results is None:
        return _NO_RESULTS
    return msgspec.structs.astuple(results)


_ENCODERS: Final = {name: found.encoder for name, found in SCENARIOS.items()}


def _encoder(scenario: str | None) -> str | None:
    return _ENCODERS.get(scenario) if scenario is not None else None


def job_row(tracked: Tracked) -> Row:
    """A ``jobs`` row, in ``schema.JOBS`` order."""
    s = tracked.state
    spec = s.spec
    run_s = (
        s.finished_at - s.started_at if s.status is JobStatus.COMPLETED and s.started_at else None
    )
    failed = s.reason is not None
    spec_part: Row = (
        (None,) * 14
        if spec is None
        else (
            spec.scenario,
            _encoder(spec.scenario),
            spec.engine,
            spec.input,
            spec.output,
            spec.duration_s,
            spec.queue,
            spec.priority,
            spec.max_retries,
            spec.timeout_s,
            spec.approval_required,
            list(spec.quality_metrics),
            list(spec.labels.items()),
            spec.preset,
        )
    )
    return (
        s.job,
        s.status,
        s.status in TERMINAL_STATUSES,
        *spec_part,
        tracked.submitted_by,
        s.agent or None,
        s.gpu,
        s.attempt,
        s.retries,
        s.budget_s or None,
        s.percent,
        _time(s.submitted_at),
        _time(s.queued_at),
        _time(tracked.first_assigned_at),
        _time(s.assigned_at),
        _time(s.started_at),
        _time(s.finished_at),
        s.retry_at,
        tracked.wait_s,
        run_s,
        s.reason if failed and s.reason is not None else None,
        s.message or None,
        s.prompt or None,
        *_results(s.results),
        tracked.last_seq,
        _time(tracked.updated_at),
    )


def transition_row(seq: int, before: JobState, after: JobState, event: JobEvent) -> Row:
    """A ``job_transitions`` row, in ``schema.JOB_TRANSITIONS`` order."""
    agent = getattr(event, "agent", "") or after.agent or before.agent
    failed = after.status in _FAILED
    return (
        seq,
        after.job,
        before.status,
        after.status,
        event.at,
        type(event).__name__,
        event.cause or None,
        agent or None,
        after.attempt,
        after.reason if failed and after.reason is not None else None,
        after.message or None if failed or after.status is JobStatus.CANCELED else None,
    )


def result_row(seq: int, state: JobState, event: JobCompleted) -> Row:
    """A ``results`` row, in ``schema.RESULTS`` order."""
    spec = state.spec
    scenario = spec.scenario if spec is not None else None
    return (
        seq,
        state.job,
        event.attempt,
        event.agent,
        event.at,
        scenario,
        _encoder(scenario),
        spec.queue if spec is not None else None,
        spec.duration_s if spec is not None else None,
        *msgspec.structs.astuple(event.results),
    )


def agent_row(state: AgentState, seq: int) -> Row:
    """An ``agents`` row, in ``schema.AGENTS`` order."""
    caps = state.capabilities
    gpus = caps.gpus if caps is not None else ()
    return (
        state.agent,
        state.status,
        caps.hostname if caps is not None else None,
        caps.cpu_model if caps is not None else None,
        caps.cpu_cores if caps is not None else None,
        caps.ram_bytes if caps is not None else None,
        len(gpus),
        [gpu.name for gpu in gpus],
        sum(gpu.memory_bytes for gpu in gpus),
        sum(gpu.nvenc_sessions for gpu in gpus),
        list(caps.encoders) if caps is not None else [],
        list(caps.engines) if caps is not None else [],
        list(caps.filters) if caps is not None else [],
        list(caps.protocols) if caps is not None else [],
        caps.ffmpeg_version if caps is not None else None,
        state.slots,
        _time(state.registered_at),
        _time(state.last_seen),
        state.quarantined,
        state.quarantine_reason or None,
        seq,
    )
