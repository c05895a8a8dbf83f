"""The scheduler's pure core: the log folded into what it needs to decide, and the decisions.

``SchedulerCore`` holds every live job's state with the stream sequence of its last event (the
``expected`` of the next append), the agents, the ready queue, which agent holds which attempt
and the clock-driven indexes. It never reads a clock or a socket: the service feeds it events
(``apply``), heartbeats (``heard_from``) and the time, and asks it for decisions (``plan``,
``tick``, ``on_command``, ``returned``), each naming events to append under optimistic
concurrency. The events come from the pure deciders, ``events.job.decide`` for a job and
``events.agent.decide_agent`` for an agent: the core chooses what to ask them, and when.

Questions and commands are apart. A query (``plan``, ``tick``, ``is_lost``, ``on_command``)
changes nothing a caller can see, so asking twice gives the same answer; a command changes state
and returns nothing. ``plan`` and ``tick`` return what their caller records afterwards with
``planned`` (the newly queued jobs are checked, the change count is seen) and ``ticked`` (the
orphaned attempts are decided on). An agent's heartbeat window starts when ``apply`` first
learns of the agent, or at ``grace``/``restore``, never inside a query.

Applying is idempotent per entity: an event whose sequence is not past the entity's last one is
skipped. That lets the service apply its own appends at once (so its next decision sees them)
and still feed the same events again when it follows the log, and lets a snapshot cover "all
events up to ``covered``" even when some later own appends are already in it.

Memory is bounded by live work: terminal jobs are forgotten ``retention_s`` after they end
(``expire``). A command or event for a forgotten job is decided after loading that job's
history from the store (``adopt``); the core never guesses. An event the core follows for a job
it has forgotten (an operator's retry of a failed job, seen by a standby or in a replay after a
snapshot) is not dropped: the job is put in ``unknown`` and the service loads it.
"""

from __future__ import annotations

import collections
import heapq
import sys
from collections.abc import Iterable, Iterator
from typing import Final, cast

import msgspec

from agent.needs import shape
from events import dedup
from events.agent import AgentState, decide_agent, evolve_agent, initial_agent
from events.agent_events import (
    AgentCleared,
    AgentDeregistered,
    AgentEvent,
    AgentRegistered,
    AgentReturned,
)
from events.base import AgentEventBase, Event, JobEventBase
from events.commands import (
    AgentCommand,
    AgentGone,
    AgentOperatorCommand,
    Assign,
    ClearAgent,
    DeclareLost,
    DeclareReturned,
    JobCommand,
    OperatorCommand,
    QuarantineAgent,
    QuarantineFaulty,
    Reject,
    RemoveAgent,
    RequeueDue,
    TimeOut,
)
from events.enums import HOLDING_STATUSES, AgentStatus, FailureReason, JobStatus
from events.job import JobState, decide, evolve, initial, is_terminal, place_at
from events.job_events import (
    JobCompleted,
    JobEvent,
    JobFailed,
    JobProgressed,
    JobQueued,
    JobResumed,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobTimedOut,
)
from events.policy import (
    DEFAULT_BUDGET,
    DEFAULT_ORDER,
    DEFAULT_RETRY,
    BudgetPolicy,
    OrderPolicy,
    RetryPolicy,
    order_key,
    time_budget_s,
)
from events.scenarios import scenario
from events.spec import is_live, planned_duration_s
from events.work import Heartbeat, RunningJob
from ffrtmp.scheduler.deadlines import Deadlines
from ffrtmp.scheduler.placement import (
    AgentRoom,
    GpuRoom,
    Needs,
    Rooms,
    lacks,
    needs_of,
    why_never,
)
from ffrtmp.scheduler.ready import Entry, ReadyQueue
from ffrtmp.scheduler.timers import TimerSettings, due_at, job_timers, lost_agents

S = JobStatus
TIMED: Final = frozenset({S.ASSIGNED, S.RUNNING, S.RETRYING})
# Failures that say something about the agent: a bad input or a lost agent does not.
AGENT_FAULTS: Final = frozenset({FailureReason.RUNTIME_ERROR, FailureReason.TIMEOUT})


class SchedulerSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What a farm tunes; every default is documented in the README's scheduler section."""

    timers: TimerSettings = TimerSettings()
    retry: RetryPolicy = DEFAULT_RETRY
    budget: BudgetPolicy = DEFAULT_BUDGET
    order: OrderPolicy = DEFAULT_ORDER
    retention_s: float = 600.0  # how long a finished job stays in memory (for late commands)
    quarantine_after: int = 3  # failures in a row, while other agents succeed
    max_scan: int = 5000  # queued jobs one planning pass looks at, at most


class _Decision(msgspec.Struct, frozen=True, kw_only=True):
    """Events to append, expecting ``expected`` as the last sequence; one dedup id each."""

    events: tuple[Event, ...]
    expected: int
    msg_ids: tuple[str, ...]


class JobDecision(_Decision, frozen=True, kw_only=True):
    """Events to append to one job's subjects."""

    job: str


class AgentDecision(_Decision, frozen=True, kw_only=True):
    """Events to append to one agent's subject."""

    agent: str


Decision = JobDecision | AgentDecision
"""What one command or observation decided, for a job or for an agent."""


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A planning pass's decisions, and what ``planned`` needs to record the pass.

    ``more``: the pass stopped at its limit with room left, so another pass can place more.
    ``fresh``: up to which newly queued job (counted since the core began) it checked for
    rejection; ``changes``: the core's change count it saw (later changes call for a pass).
    Both are positions, not amounts, so recording a pass twice, or late, changes nothing more.
    """

    decisions: tuple[Decision, ...]
    more: bool
    fresh: int
    changes: int


class Tick(msgspec.Struct, frozen=True, kw_only=True):
    """What the clock decided at ``at``, and the orphaned attempts it decided on.

    ``ticked`` drops those orphans and moves the timers it looked at to their next due time.
    """

    decisions: tuple[Decision, ...]
    orphans: frozenset[str]
    at: float


class Streak(msgspec.Struct, kw_only=True, gc=False):
    """An agent's failures in a row, and the fleet's completions when the run began."""

    failures: int = 0
    others_done_at_start: int = 0


class Seen(msgspec.Struct, kw_only=True, gc=False):
    """A running attempt as this scheduler saw it, by its own clock, and how far it had got.

    ``progressed`` moves when a milestone lands or a heartbeat shows more frames or media time
    than the last one did: liveness is judged on the output advancing, not on milestones.
    """

    attempt: int
    started: float
    progressed: float
    frames: int = 0
    out_time_s: float = 0.0
    checked_frames: int = 0
    percent: float = 0.0  # what an agent of the previous version shows (it sends no frames)
    budget_s: float = 0.0  # from the media duration the agent found, when the spec had none


class SchedulerSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the core cannot re-derive, as of stream sequence ``covered``."""

    covered: int
    jobs: list[tuple[int, JobState]]
    agents: list[tuple[int, AgentState]]
    streaks: dict[str, tuple[int, int]]
    completed: int


class AgentLoad(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the last heartbeat said about an agent's load, for tie-breaks and GPU memory."""

    cpu: float = 0.0
    gpu_memory_used: dict[int, int] = {}


_NO_LABELS: Final[dict[str, str]] = {}


def _compact(event: JobSubmitted) -> JobSubmitted:
    """The same submission sharing what many jobs share: memory per queued job stays small."""
    spec = event.spec
    labels = spec.labels or _NO_LABELS  # one empty dict for all, never mutated
    spec = msgspec.structs.replace(spec, scenario=sys.intern(spec.scenario), labels=labels)
    return msgspec.structs.replace(event, spec=spec)


def _job_msg_id(state: JobState, event: JobEvent, detail: str = "") -> str:
    """A dedup id from what the decision is: the same decision twice is one event."""
    return dedup.scheduler_job_event(state.job, state.attempt, type(event).__name__, detail)


class SchedulerCore:
    """The scheduler's state and decisions; see the module doc."""

    def __init__(self, settings: SchedulerSettings | None = None) -> None:
        """Start knowing nothing (a snapshot or a replay fills it)."""
        self.settings = settings or SchedulerSettings()
        self.jobs: dict[str, JobState] = {}
        self.seqs: dict[str, int] = {}
        self.agents: dict[str, AgentState] = {}
        self.agent_seqs: dict[str, int] = {}
        self.covered = 0  # every event up to here is applied
        self.queues: dict[Needs, ReadyQueue] = {}  # queued jobs, one queue per kind of need
        self.timed: set[str] = set()
        self._deadlines = Deadlines()  # when each timed job's timer may fire next
        self.holding: dict[str, dict[str, int | None]] = {}
        self.heard: dict[str, float] = {}
        self.loads: dict[str, AgentLoad] = {}
        self.streaks: dict[str, Streak] = {}
        self.completed = 0
        self._ended: collections.deque[tuple[float, str]] = collections.deque()
        self._needs: dict[str, Needs] = {}  # scenario+spec → needs, shared by equal specs
        self._never: dict[Needs, str | None] = {}  # cache of why_never, cleared on agent change
        self._capable: dict[Needs, frozenset[str]] = {}  # agents able to serve a need, likewise
        self._orphans: set[str] = set()  # attempts whose agent restarted or left: retry them
        self._fresh: list[str] = []  # queued since the last pass: checked for rejection first
        self._fresh_done = 0  # fresh jobs recorded as checked, ever: where ``_fresh`` starts
        # When this scheduler saw a running attempt start and last advance, by its own clock:
        # an agent's clock may be off, and its stamps must not time an attempt out.
        self._seen: dict[str, Seen] = {}
        self.unknown: set[str] = set()  # forgotten jobs that moved again: the service loads them
        self._changes = 1  # counts changes a planning pass could act on
        self._planned = 0  # the change count the last recorded pass saw
        self._more = False  # the last recorded pass stopped at its limit with room left
        self._rooms = Rooms(able=self._able)  # the placeable agents' room, kept in step

    # --- folding ---------------------------------------------------------------------------

    def apply(self, seq: int, event: Event, now: float) -> bool:
        """Fold one event at its stream sequence; False when it was already applied or moot.

        ``now`` is the scheduler's clock when it learns of the event: an agent that registers
        or returns counts as heard from then, whatever its own clock said.
        """
        if isinstance(event, JobEventBase):
            return self._apply_job(seq, cast("JobEvent", event), now)
        if isinstance(event, AgentEventBase):
            return self._apply_agent(seq, cast("AgentEvent", event), now)
        return False

    def passed(self, seq: int, job: str) -> None:
        """A message no reader applies was stored on ``job``'s subjects at ``seq``.

        It changes nothing, but it is the job's last sequence now: the next append expects it.
        """
        if seq > self.seqs.get(job, seq):
            self.seqs[job] = seq

    def advance(self, seq: int) -> None:
        """Record that every event up to ``seq`` has been applied (the follower's position)."""
        self.covered = max(self.covered, seq)

    def _apply_job(self, seq: int, event: JobEvent, now: float) -> bool:
        job = event.job
        old = self.jobs.get(job)
        if old is None:
            if isinstance(event, JobQueued):  # only a retry revives a job, and it was forgotten
                self.unknown.add(job)
            if not isinstance(event, JobSubmitted):
                return False  # forgotten or never submitted: adopted from the store on demand
            old = initial(job)
            event = _compact(event)
        elif seq <= self.seqs[job]:
            return False
        new = evolve(old, event)
        self.seqs[job] = seq  # the next append expects it, whatever the event changed
        if new is old:
            return True  # a refusal, or a report from an agent not holding the attempt
        self.jobs[job] = new
        self._index(old, new, event)
        self._observe(old, new, event, now)
        self._time(job)
        return True

    def _time(self, job: str) -> None:
        """Look at a timed job again when its timer may fire, as this scheduler's clock sees it.

        Called wherever that time may have moved earlier; a later one needs no call, as the
        earlier entry only makes the tick look, and ``ticked`` then files the later time.
        """
        if job in self.timed:
            self._deadlines.add(
                job, due_at(self._timed_by_us(self.jobs[job]), self.settings.timers)
            )

    def _observe(self, old: JobState, new: JobState, event: JobEvent, now: float) -> None:
        """Note by this scheduler's clock when a running attempt started or showed progress."""
        if new.status is not S.RUNNING:
            self._seen.pop(new.job, None)
            return
        if not isinstance(event, JobStarted | JobProgressed | JobResumed):
            return
        seen = self._seen.get(new.job)
        if seen is None or isinstance(event, JobStarted):
            seen = self._seen[new.job] = Seen(attempt=new.attempt, started=now, progressed=now)
        elif isinstance(event, JobResumed):  # paused time does not count: shift the start
            seen.started += new.started_at - old.started_at
        seen.progressed = now

    def _timed_by_us(self, state: JobState) -> JobState:
        """A running attempt with its start and progress as this scheduler observed them."""
        seen = self._seen.get(state.job)
        if seen is None or state.status is not S.RUNNING:
            return state
        return msgspec.structs.replace(
            state,
            started_at=seen.started,
            last_progress_at=seen.progressed,
            budget_s=state.budget_s or seen.budget_s,
        )

    def _advanced(self, agent: str, running: RunningJob, now: float) -> None:
        """A heartbeat's view of an attempt: its output advanced since the last one, or not.

        Only the holder's report of the current attempt counts; the first one after a restart
        (nothing seen yet) counts as progress, as a restart gives every agent a fresh window.
        """
        state = self.jobs.get(running.job)
        if (
            state is None
            or state.status is not S.RUNNING
            or state.agent != agent
            or state.attempt != running.attempt
            or running.paused
        ):
            return
        seen = self._seen.get(running.job)
        if seen is None:
            seen = Seen(attempt=state.attempt, started=state.started_at, progressed=now)
            self._seen[running.job] = seen
            self._time(running.job)
        if running.media_s and not state.budget_s and not seen.budget_s:
            seen.budget_s = self._budget(state, running.media_s)
            self._time(running.job)
        out_time = running.out_time_s or 0.0
        if (
            running.frames > seen.frames
            or out_time > seen.out_time_s
            or running.checked_frames > seen.checked_frames
            or running.percent > seen.percent
        ):
            seen.frames = max(seen.frames, running.frames)
            seen.out_time_s = max(seen.out_time_s, out_time)
            seen.checked_frames = max(seen.checked_frames, running.checked_frames)
            seen.percent = max(seen.percent, running.percent)
            seen.progressed = now

    def _apply_agent(self, seq: int, event: AgentEvent, now: float) -> bool:
        agent = event.agent
        if seq <= self.agent_seqs.get(agent, 0):
            return False
        old = self.agents.get(agent) or initial_agent(agent)
        new = evolve_agent(old, event)
        self.agents[agent] = new
        self.agent_seqs[agent] = seq
        match event:
            case AgentRegistered():
                self._never.clear()
                self._capable.clear()
                self.heard[agent] = max(self.heard.get(agent, 0.0), now)
                self._orphan_held_by(agent, seq)
            case AgentDeregistered():
                self._orphan_held_by(agent, seq)
            case AgentReturned():
                self.heard[agent] = max(self.heard.get(agent, 0.0), now)
            case AgentCleared():
                self.streaks.pop(agent, None)
            case _:
                pass
        self._sync_room(agent)
        self.heard.setdefault(agent, now)  # never heard from: its window starts when learned
        self._changes += 1
        return True

    def _sync_room(self, agent: str) -> None:
        """Put the agent's room as its state, holdings and load say, or drop it: not placeable."""
        state = self.agents.get(agent)
        caps = None if state is None else state.capabilities
        if state is None or caps is None or not state.placeable:
            self._rooms.drop(agent)
            return
        held = self.holding.get(agent, {})
        load = self.loads.get(agent) or AgentLoad()
        gpus = [
            GpuRoom(
                index=gpu.index,
                encoders=gpu.encoders,
                sessions=gpu.nvenc_sessions,
                memory_bytes=gpu.memory_bytes,
                held=sum(1 for g in held.values() if g == gpu.index),
                reported=load.gpu_memory_used.get(gpu.index, 0),
            )
            for gpu in caps.gpus
        ]
        self._rooms.put(AgentRoom(agent, caps, state.slots, len(held), gpus=gpus, load=load.cpu))

    def _orphan_held_by(self, agent: str, seq: int) -> None:
        """A registration or a clean exit means the attempts the agent held before are dead."""
        self._orphans.update(
            job for job in self.holding.get(agent, {}) if self.seqs.get(job, 0) < seq
        )

    def _index(self, old: JobState, new: JobState, event: JobEvent | None) -> None:
        """Keep the derived indexes (ready queue, timers, holdings, streaks) in step."""
        job = new.job
        if new.status is S.QUEUED:
            if old.status is not S.QUEUED or old.queued_at != new.queued_at:
                spec = new.spec
                assert spec is not None  # noqa: S101 -- a queued job was submitted
                key = order_key(spec.queue, spec.priority, place_at(new), self.settings.order)
                needs = self.needs(new)
                queue = self.queues.get(needs)
                if queue is None:
                    queue = self.queues[needs] = ReadyQueue()
                queue.push(job, key)
                self._fresh.append(job)
                self._changes += 1
        elif old.status is S.QUEUED:
            self._unqueue(old)
        if new.status in TIMED:
            self.timed.add(job)
        else:
            self.timed.discard(job)
        self._hold(old, new)
        if new.status is not old.status and is_terminal(new):
            self._ended.append((new.finished_at, job))
            self._orphans.discard(job)
        if event is not None:
            self._count(event)

    def _unqueue(self, state: JobState) -> None:
        queue = self.queues.get(self.needs(state))
        if queue is not None:
            queue.remove(state.job)

    @property
    def dirty(self) -> bool:
        """Whether a planning pass could act: something changed since the last recorded one."""
        return self._more or self._changes != self._planned

    @property
    def queued(self) -> int:
        """Jobs waiting for placement."""
        return sum(len(queue) for queue in self.queues.values())

    def _hold(self, old: JobState, new: JobState) -> None:
        """Which agent (and GPU) holds the attempt: the holdings and the rooms, in step."""
        job = new.job
        was = old.agent if old.status in HOLDING_STATUSES else ""
        now = new.agent if new.status in HOLDING_STATUSES else ""
        if was and was != now:
            held = self.holding.get(was)
            if held is not None and job in held:
                self._rooms.hold(was, held.pop(job), -1)
            self._changes += 1
        if now:
            held = self.holding.setdefault(now, {})
            if job in held:
                if held[job] == new.gpu:
                    return
                self._rooms.hold(now, held[job], -1)
            held[job] = new.gpu
            self._rooms.hold(now, new.gpu, 1)

    def _count(self, event: JobEvent) -> None:
        """Failure streaks per agent, for quarantine."""
        match event:
            case JobCompleted():
                self.completed += 1
                self.streaks.pop(event.agent, None)
            case JobRetrying() | JobFailed() if event.agent and event.reason in AGENT_FAULTS:
                self._fault(event.agent)
            case JobTimedOut() if event.agent:
                self._fault(event.agent)
            case _:
                pass

    def _fault(self, agent: str) -> None:
        streak = self.streaks.get(agent)
        if streak is None:
            streak = self.streaks[agent] = Streak(others_done_at_start=self.completed)
        streak.failures += 1

    def adopt(self, job: str, seq: int, state: JobState) -> None:
        """Take a job's state as loaded from the store (a forgotten job, or after a conflict)."""
        old = self.jobs.get(job)
        if old is not None and seq <= self.seqs[job]:
            return
        self.jobs[job] = state
        self.seqs[job] = seq
        self._seen.pop(job, None)  # timed by its own stamps until it shows life again
        self._index(old or initial(job), state, None)
        self._time(job)

    def heard_from(self, heartbeat: Heartbeat, now: float) -> None:
        """Note an agent's heartbeat at ``now`` (the scheduler's clock, not the agent's)."""
        self.heard[heartbeat.agent] = now
        memory = {g.index: g.memory_used_bytes for g in heartbeat.gpus if g.memory_used_bytes}
        load = (heartbeat.cpu_percent or 0.0) / 100.0
        previous = self.loads.get(heartbeat.agent)
        if previous is None or previous.cpu != load or previous.gpu_memory_used != memory:
            self.loads[heartbeat.agent] = AgentLoad(cpu=load, gpu_memory_used=memory)
            self._rooms.load(heartbeat.agent, load, memory)
        for running in heartbeat.running:
            self._advanced(heartbeat.agent, running, now)

    def is_lost(self, agent: str) -> bool:
        """Whether the log says the agent is lost (heard from again: record its return)."""
        state = self.agents.get(agent)
        return state is not None and state.status is AgentStatus.LOST

    # --- deciding ---------------------------------------------------------------------------

    def state_of(self, job: str) -> JobState | None:
        """A job's state, or None when the core does not hold it (load it, then ``adopt``)."""
        return self.jobs.get(job)

    def on_command(self, command: OperatorCommand, now: float) -> Decision:
        """Decide an operator's command against the job or agent it names, as the core knows it."""
        if isinstance(command, QuarantineAgent | ClearAgent | RemoveAgent):
            return self._on_agent_command(command, now)
        state = self.jobs.get(command.job) or initial(command.job)
        events = decide(state, command, now, command.id, self.settings.retry)
        return JobDecision(
            job=command.job,
            events=tuple(events),
            expected=self.seqs.get(command.job, 0),
            msg_ids=tuple(dedup.command_event(command.id, i) for i in range(len(events))),
        )

    def _on_agent_command(self, command: AgentOperatorCommand, now: float) -> Decision:
        """Quarantine, clear or remove (``events.agent``); an agent never seen: nothing."""
        agent = self.agents.get(command.agent)
        events = () if agent is None else tuple(decide_agent(agent, command, now, command.id))
        return AgentDecision(
            agent=command.agent,
            events=events,
            expected=self.agent_seqs.get(command.agent, 0),
            msg_ids=(dedup.command_event(command.id, 0),) * len(events),
        )

    def decide_for(self, job: str, command: JobCommand, now: float, detail: str = "") -> Decision:
        """The scheduler's own command on one job, as a decision (possibly with no events)."""
        state = self.jobs.get(job) or initial(job)
        cause = f"sched:{job}:{state.attempt}:{type(command).__name__}"
        events = decide(state, command, now, cause, self.settings.retry)
        return JobDecision(
            job=job,
            events=tuple(events),
            expected=self.seqs.get(job, 0),
            msg_ids=tuple(_job_msg_id(state, e, detail) for e in events),
        )

    def needs(self, state: JobState) -> Needs:
        """What the job needs of an agent (cached per distinct spec shape)."""
        spec = state.spec
        assert spec is not None  # noqa: S101 -- only submitted jobs are placed
        key = shape(spec)  # small and shared: equal shapes have equal needs
        needs = self._needs.get(key)
        if needs is None:
            if len(self._needs) > 10_000:
                self._needs.clear()
            needs = self._needs[key] = needs_of(spec)
        return needs

    def _why_never(self, needs: Needs) -> str | None:
        if needs not in self._never:
            fleet = [a.capabilities for a in self.agents.values() if a.capabilities is not None]
            self._never[needs] = why_never(needs, fleet)
        return self._never[needs]

    def rooms(self) -> Rooms:
        """Each placeable agent's free room, counting attempts held in the log, not promises."""
        return self._rooms

    def _able(self, needs: Needs, room: AgentRoom) -> bool:
        """Whether the agent could run such a job, from a cache cleared when agents change."""
        able = self._capable.get(needs)
        if able is None:
            able = self._capable[needs] = frozenset(
                agent
                for agent, state in self.agents.items()
                if state.capabilities is not None and not lacks(needs, state.capabilities)
            )
        return room.agent in able

    def plan(self, now: float, limit: int | None = None) -> Plan:
        """Place queued jobs in order onto free room; reject the ones nobody could ever run.

        A query: decisions are not applied here (the service appends them and applies what
        landed) and the core is as it was; ``planned`` records that the pass was made. A job
        with no room for its needs now keeps its place in the queue.
        """
        decisions = self._reject_fresh(now)
        rooms = self._rooms
        free = rooms.free
        cap = self.settings.max_scan if limit is None else limit
        # A k-way merge of the per-need queues by place: a kind of need with no room left
        # drops out of this pass, so jobs waiting for scarce room never block the others.
        heads = []
        for needs, queue in self.queues.items():
            head = queue.first()
            if head is not None:
                heads.append((head[0], head[1], needs))
        heapq.heapify(heads)
        taken: list[tuple[ReadyQueue, str, Entry]] = []
        placed_count = 0
        while heads and free > 0 and placed_count < cap:
            _, job, needs = heads[0]
            queue = self.queues[needs]
            popped = queue.pop()
            assert popped is not None  # noqa: S101 -- heads track each queue's first
            state = self.jobs[job]
            never = self._why_never(needs)
            placed = None if never else rooms.place(needs)
            if never is not None:  # the fleet changed under it: nobody can run it any more
                decisions.append(self.decide_for(job, Reject(message=never), now))
            elif placed is None:  # this kind of need is done for this pass
                queue.put_back(job, popped[1])
                heapq.heappop(heads)
                continue
            else:
                free -= 1
                placed_count += 1
                command = Assign(agent=placed.agent, budget_s=self._budget(state), gpu=placed.gpu)
                decisions.append(self.decide_for(job, command, now, placed.agent))
            taken.append((queue, job, popped[1]))
            head = queue.first()
            if head is None:
                heapq.heappop(heads)
            else:
                heapq.heapreplace(heads, (head[0], head[1], needs))
        for queue, job, place in taken:  # applying the assignment takes them out for good
            queue.put_back(job, place)
        rooms.release()  # likewise the room: what lands is held as the log says
        return Plan(
            decisions=tuple(decisions),
            more=placed_count >= cap and free > 0,  # stopped at the limit, not for want of room
            fresh=self._fresh_done + len(self._fresh),
            changes=self._changes,
        )

    def planned(self, plan: Plan) -> None:
        """Record a pass: its fresh jobs are checked, and only later changes call for another.

        What changed between ``plan`` and this call (its own decisions applied, say) still
        counts, so it may come before or after the decisions are committed.
        """
        checked = plan.fresh - self._fresh_done
        if checked > 0:
            del self._fresh[:checked]
            self._fresh_done = plan.fresh
        self._planned = max(self._planned, plan.changes)
        self._more = plan.more

    def _reject_fresh(self, now: float) -> list[Decision]:
        """Newly queued jobs that no registered agent could ever run are rejected at once."""
        decisions = []
        for job in self._fresh:
            state = self.jobs.get(job)
            if state is None or state.status is not S.QUEUED:
                continue
            never = self._why_never(self.needs(state))
            if never is not None:
                decisions.append(self.decide_for(job, Reject(message=never), now))
        return decisions

    def _budget(self, state: JobState, media_s: float | None = None) -> float:
        """The attempt's budget from its spec, or from ``media_s`` the agent found in the input."""
        spec = state.spec
        assert spec is not None  # noqa: S101 -- only submitted jobs are placed
        chosen = scenario(spec.scenario)
        duration = planned_duration_s(spec) if media_s is None else media_s
        return time_budget_s(
            chosen, duration, spec.engine, spec.timeout_s, self.settings.budget, paced=is_live(spec)
        )

    def tick(self, now: float) -> Tick:
        """What the clock decided: retries due, attempts over budget or stalled, agents lost.

        A query, like ``plan``: ``ticked`` records that the orphaned attempts were decided on.
        """
        decisions = [self.decide_for(job, cmd, now) for job, cmd in self._due(now)]
        decisions += self._lost(now)
        decisions += self._quarantines(now)
        orphans = frozenset(self._orphans)
        for job in sorted(orphans):
            state = self.jobs.get(job)
            if state is not None and state.status in HOLDING_STATUSES:
                decisions.append(self.decide_for(job, AgentGone(agent=state.agent), now))
        return Tick(decisions=tuple(d for d in decisions if d.events), orphans=orphans, at=now)

    def ticked(self, tick: Tick) -> None:
        """Record a tick: its orphans are decided on, its timers filed at their next due time.

        Attempts orphaned since the tick are not dropped. A timer whose decision did not land
        is due still, so the next tick looks at it again.
        """
        self._orphans -= tick.orphans
        for job in self._deadlines.take(tick.at):
            self._time(job)
        self._deadlines.keep_only(self.timed)

    def _due(self, now: float) -> Iterator[tuple[str, RequeueDue | TimeOut]]:
        """The timed jobs whose timer fires now: only those filed as due by now are looked at."""
        timers = self.settings.timers
        for job in self._deadlines.due(now):
            if job in self.timed:
                command = job_timers(self._timed_by_us(self.jobs[job]), now, timers)
                if command is not None:
                    yield job, command

    def _lost(self, now: float) -> list[Decision]:
        online = {
            agent: self.heard.get(agent, now)  # ``apply`` starts every agent's window
            for agent, state in self.agents.items()
            if state.status is AgentStatus.ONLINE
        }
        decisions = []
        for agent in lost_agents(online, now, self.settings.timers):
            held = tuple(sorted(self.holding.get(agent, {})))
            lost = DeclareLost(last_seen=online[agent])
            msg_id = dedup.scheduler_agent_event(agent, "lost", online[agent])
            decisions.append(self.decide_for_agent(agent, lost, now, "sched:heartbeat", msg_id))
            decisions += [self.decide_for(job, AgentGone(agent=agent), now) for job in held]
        return decisions

    def returned(self, agent: str, now: float) -> Decision:
        """A lost agent was heard from again: record it (its old attempts stay failed)."""
        msg_id = dedup.scheduler_agent_event(agent, "returned", self.agent_seqs.get(agent))
        return self.decide_for_agent(agent, DeclareReturned(), now, "sched:heartbeat", msg_id)

    def _quarantines(self, now: float) -> list[Decision]:
        decisions = []
        for agent, streak in sorted(self.streaks.items()):
            state = self.agents.get(agent)
            if (
                state is None
                or streak.failures < self.settings.quarantine_after
                or self.completed <= streak.others_done_at_start
            ):
                continue
            faulty = QuarantineFaulty(
                failures=streak.failures,
                completed_elsewhere=self.completed - streak.others_done_at_start,
            )
            msg_id = dedup.scheduler_agent_event(agent, "quarantined", self.agent_seqs.get(agent))
            decisions.append(self.decide_for_agent(agent, faulty, now, "sched:streak", msg_id))
        return decisions

    def decide_for_agent(
        self, agent: str, command: AgentCommand, now: float, cause: str, msg_id: str
    ) -> Decision:
        """The scheduler's own command on one agent, as a decision (possibly with no events)."""
        state = self.agents.get(agent) or initial_agent(agent)
        events = tuple(decide_agent(state, command, now, cause))
        return AgentDecision(
            agent=agent,
            events=events,
            expected=self.agent_seqs.get(agent, 0),
            msg_ids=(msg_id,) * len(events),
        )

    def expire(self, now: float) -> int:
        """Forget jobs that ended more than ``retention_s`` ago; returns how many."""
        cutoff = now - self.settings.retention_s
        forgotten = 0
        while self._ended and self._ended[0][0] < cutoff:
            _, job = self._ended.popleft()
            state = self.jobs.get(job)
            if state is not None and is_terminal(state):
                del self.jobs[job]
                del self.seqs[job]
                forgotten += 1
        return forgotten

    def control_outstanding(self) -> Iterable[JobState]:
        """Jobs with a control request the agent has not acted on: re-sent on takeover."""
        return (state for state in self.jobs.values() if state.requested is not None)

    # --- snapshots --------------------------------------------------------------------------

    def snapshot(self) -> SchedulerSnapshot:
        """The core as of ``covered`` (own appends past it are included; replay skips them)."""
        return SchedulerSnapshot(
            covered=self.covered,
            jobs=[(self.seqs[job], state) for job, state in self.jobs.items()],
            agents=[(self.agent_seqs.get(a, 0), state) for a, state in self.agents.items()],
            streaks={a: (s.failures, s.others_done_at_start) for a, s in self.streaks.items()},
            completed=self.completed,
        )

    @classmethod
    def restore(
        cls, snapshot: SchedulerSnapshot, now: float, settings: SchedulerSettings | None = None
    ) -> SchedulerCore:
        """A core from a snapshot; every known agent gets a full heartbeat window from ``now``."""
        core = cls(settings)
        core.covered = snapshot.covered
        core.completed = snapshot.completed
        for seq, agent in snapshot.agents:
            core.agents[agent.agent] = agent
            core.agent_seqs[agent.agent] = seq
            core.heard[agent.agent] = now
            core._sync_room(agent.agent)
        for seq, state in snapshot.jobs:
            core.adopt(state.job, seq, state)
        core.streaks = {
            agent: Streak(failures=failures, others_done_at_start=others)
            for agent, (failures, others) in snapshot.streaks.items()
        }
        core._orphans.clear()
        core._fresh[:] = [job for job, state in core.jobs.items() if state.status is S.QUEUED]
        return core

    def grace(self, now: float) -> None:
        """Give every agent a full heartbeat window from ``now`` (a fresh start or a takeover).

        Every running attempt likewise gets a full stall window: while no scheduler listened,
        no heartbeat could show it advancing, and a long live stream's last milestone may be
        hours old.
        """
        for agent in self.agents:
            self.heard[agent] = max(self.heard.get(agent, 0.0), now)
        for job in self.timed:
            state = self.jobs[job]
            if state.status is not S.RUNNING:
                continue
            seen = self._seen.get(job)
            if seen is None:
                seen = Seen(attempt=state.attempt, started=state.started_at, progressed=now)
                self._seen[job] = seen
                self._time(job)
            seen.progressed = max(seen.progressed, now)
