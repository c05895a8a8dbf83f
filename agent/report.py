"""The one door through which an agent writes a job's events: decide, append, re-read on conflict.

An agent never appends a job event by hand. It puts its report (``Start``, ``Progress``,
``Complete``, ``Fail``, ``ControlDone``) to the job's pure decider (``events.job.decide``) against
its view of the job, and appends what that yields under optimistic concurrency on all of the
job's subjects. A ``ConcurrencyConflict`` means the job moved (a control request, a cancel, a
timeout, the agent declared lost and the job given to someone else): the writer re-reads the job,
folds it and decides again. When the decision is now empty the report no longer applies, and
that is how a zombie agent is fenced: it can never complete a job that moved on.

The first report trusts a dispatch that names this agent: it decides against the job as the
dispatch describes it and appends expecting ``after_seq`` (the assignment's sequence), so it reads
nothing. The expectation is the fence: if anything landed on the job after its assignment (a
cancel, a timeout), the append conflicts and the writer reads the job and decides again. Trusting
it is safe because only the scheduler may publish on an agent's work subject (the agent's own
consumer filters on it, and the generated NATS users let no one else publish there), and the
dispatch names the agent it was placed on. A dispatch naming another agent, or none (from an
older scheduler), is not trusted: the first report reads the job from the log, as every report
did before. That read started at the stream's first sequence, a cost that grew with the log.

Wire conventions (see ``msg_id``): each event's ``Nats-Msg-Id`` is derived from the job, the
attempt, the event type and, for a milestone, its percent or, for a control outcome, the
control's cause, so a re-sent report is a no-op. A start's id also names the writer (one per
delivery of a dispatch): the server answers a known id as a duplicate before it checks the
expected sequence, so with the plain id a second delivery of the same assignment (an ack lost,
or a consumer's state rolled back by a server crash) would take the first start for its own and
run the attempt again; with its own id, it meets the first start as a conflict and stands down.
Reports carry ``cause = "<job>:<attempt>"``; a control outcome carries the cause of the
``Control`` message it answers.
"""

from __future__ import annotations

import uuid
from typing import Final

from events import dedup
from events.base import JobEventBase
from events.commands import ControlDone
from events.enums import HOLDING_STATUSES, JobStatus
from events.errors import ConcurrencyConflict
from events.job import AgentReport, JobState, decide, evolve, fold
from events.job_events import JobEvent, JobProgressed, JobStarted
from events.store import Append, EventStore
from events.subjects import Subjects
from events.work import Dispatch

TRIES: Final = 5
"""Decisions a report gets before a job that keeps moving under it is reported as a conflict."""


def attempt_cause(job: str, attempt: int) -> str:
    """The cause an attempt's own reports carry."""
    return f"{job}:{attempt}"


def msg_id(event: JobEvent, attempt: int, detail: str = "") -> str:
    """The dedup id of an agent's event: ``<job>:<attempt>:<type>[:<detail>]``.

    A milestone's detail is its percent; a control outcome's is the ``Control`` message's cause
    (``after<seq>`` when it has none), so a second pause of one attempt is a new event.
    """
    if isinstance(event, JobProgressed):
        detail = f"{event.percent:g}"
    return dedup.agent_job_event(event.job, attempt, type(event).__name__, detail)


def dispatched_state(agent: str, dispatch: Dispatch) -> JobState:
    """The job as the dispatch describes it: assigned to ``agent``, before anything is read."""
    return JobState(
        job=dispatch.job,
        status=JobStatus.ASSIGNED,
        spec=dispatch.spec,
        attempt=dispatch.attempt,
        retries=dispatch.retries,
        agent=agent,
        gpu=dispatch.gpu,
        budget_s=dispatch.budget_s,
        assigned_at=dispatch.at,
    )


class JobWriter:
    """Writes one attempt's reports under the per-job concurrency check."""

    def __init__(
        self,
        store: EventStore,
        subjects: Subjects,
        agent: str,
        dispatch: Dispatch,
        *,
        tries: int = TRIES,
    ) -> None:
        """Write for ``agent``'s attempt ``dispatch.attempt``; nothing is read until a report."""
        self._store = store
        self._agent = agent
        self._dispatch = dispatch
        self._tries = tries
        self._subject = subjects.job_event(dispatch.job, agent)
        self._filter = subjects.job_events(dispatch.job)
        self._state = dispatched_state(agent, dispatch)
        self._delivery = uuid.uuid4().hex[:12]  # this writer's start: see the module doc
        # The last sequence on the job this writer has seen; None: read the job before deciding.
        self._seen: int | None = dispatch.after_seq if dispatch.agent == agent else None

    @property
    def state(self) -> JobState:
        """The writer's current view of the job (the dispatch's, until the first report)."""
        return self._state

    @property
    def last_seq(self) -> int:
        """The last sequence on the job's subjects the writer has seen (``after_seq`` at first)."""
        return self._dispatch.after_seq if self._seen is None else self._seen

    @property
    def holds(self) -> bool:
        """Whether the writer's view still has this agent holding this attempt."""
        state = self._state
        return (
            state.status in HOLDING_STATUSES
            and state.agent == self._agent
            and state.attempt == self._dispatch.attempt
        )

    async def report(self, command: AgentReport, now: float, cause: str = "") -> list[JobEvent]:
        """Decide ``command`` against the job and store what it yields; return those events.

        ``cause`` defaults to ``<job>:<attempt>``; pass a ``Control``'s cause with the
        ``ControlDone`` that answers it. An empty list means the report does not apply to the
        job as the log has it (for a report made in order: the job moved on, stop the attempt).
        A resent report whose events are stored already returns them, storing nothing twice.
        Raises ``ConcurrencyConflict`` when the job moved under every one of ``tries`` decisions.
        """
        self._check(command)
        if self._seen is None:
            await self._reload()
        control = cause if isinstance(command, ControlDone) else None
        cause = cause or attempt_cause(self._dispatch.job, self._dispatch.attempt)
        tries = self._tries
        while True:
            try:
                return await self._once(command, now, cause, control)
            except ConcurrencyConflict:
                await self._reload()  # the next report starts from the job as it is now
                tries -= 1
                if tries <= 0:
                    raise

    async def _once(
        self, command: AgentReport, now: float, cause: str, control: str | None
    ) -> list[JobEvent]:
        """Decide against the current view and store the outcome; a conflict propagates."""
        # ControlDone names no attempt: the writer fences an older attempt of the same agent.
        if self._state.attempt != self._dispatch.attempt:
            return []
        events = decide(self._state, command, now, cause)
        await self._append(events, control)
        return events

    def _check(self, command: AgentReport) -> None:
        """A report must speak for this writer's agent and attempt: anything else is a bug."""
        attempt = self._dispatch.attempt if isinstance(command, ControlDone) else command.attempt
        if command.agent != self._agent or attempt != self._dispatch.attempt:
            mine = f"{self._agent} attempt {self._dispatch.attempt}"
            raise ValueError(f"{type(command).__name__} for {command.agent} sent through {mine}")

    async def _append(self, events: list[JobEvent], control: str | None) -> None:
        """Store each event expecting the one before; a duplicate returns its first sequence.

        ``control`` is the cause of the control a ``ControlDone`` answers ("" if it had none),
        None for any other report.
        """
        for event in events:
            detail = "" if control is None else control or f"after{self.last_seq}"
            if isinstance(event, JobStarted):
                detail = self._delivery
            seq = await self._store.append(
                Append(
                    subject=self._subject,
                    event=event,
                    msg_id=msg_id(event, self._dispatch.attempt, detail),
                    expected=self.last_seq,
                    expected_subject=self._filter,
                )
            )
            if seq > self.last_seq:
                self._state, self._seen = evolve(self._state, event), seq

    async def _reload(self) -> None:
        """Read the job afresh and fold it; events this code cannot read fold as no-ops."""
        loaded = await self._store.load(self._dispatch.job)
        events = [event for _, event in loaded.events if isinstance(event, JobEventBase)]
        self._state = fold(self._dispatch.job, events)
        self._seen = loaded.last_seq
