"""The scheduler service: the pure core wired to the log, the commands, the heartbeats, the clock.

One asyncio task decides (the *decider*); the others feed it. The follower applies every event
of the log to the core (its own appends included: the core skips what it has applied), the
heartbeat subscription notes who is alive, and the intake pulls operator commands from the
durable ``scheduler`` consumer. The decider turns commands, the clock and free room into
decisions, appends them under per-job optimistic concurrency, applies what landed, and only
then acknowledges commands and publishes control messages. An assignment is its own dispatch:
``JobAssigned`` lands on ``<prefix>.evt.job.<job>.sched.<agent>``, which that agent's consumer
on the events stream reads; nothing else is sent for it.

Start: the newest snapshot, then the log's tail, then (as leader) the control messages the log
says are outstanding go out again; the work stream's dedup (``Nats-Msg-Id``) and the agents'
own concurrency check make that safe. There is no other recovery path. Leadership is a KV
lease: a standby keeps its core warm from the log and starts deciding when it takes the lease.
A stale leader cannot do harm: its appends fail the concurrency check.

While leading, a submit may also come as a request (``door``): it is decided like a pulled
command, and its answer (after the commit) is the asker's acknowledgement, so a submit to a
leading scheduler stores no command.

The seams: the lease loops are ``lease.acquire`` and ``lease.keep``, the command consumer is
``intake.Intake``, the submit requests ``door.Door``, the work messages a commit owes the
agents are ``outbox.Outgoing`` values sent by ``outbox.publish``, and the decisions themselves
come from the pure ``core``. This module holds what joins them: following the log, the
decider's rounds, and appending.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Final, assert_never

import msgspec
from nats.aio.msg import Msg

from events.admit import job_of
from events.aio import raise_if_cancelling
from events.base import AgentEventBase, Event, JobEventBase, SetAside
from events.codec import accept_command, decode_heartbeat
from events.commands import AgentCommandBase, OperatorCommand
from events.deadletter import Aside
from events.errors import ConcurrencyConflict, FfrtmpError, MalformedMessage, StoreUnavailable
from events.grouped import append_grouped
from events.jetstream import JetStreamEventStore
from events.job import fold
from events.job_events import (
    CommandRefused,
    JobAssigned,
    JobControlRequested,
    JobRejected,
    JobTimedOut,
)
from events.natserrors import FAILURES
from events.store import Append
from events.subjects import SCHEDULER_WRITER, Subjects
from ffrtmp.scheduler import lease
from ffrtmp.scheduler.core import (
    AgentDecision,
    Decision,
    JobDecision,
    SchedulerCore,
    SchedulerSettings,
    SchedulerSnapshot,
)
from ffrtmp.scheduler.door import Delivery, Door, owed, refusal
from ffrtmp.scheduler.intake import MAX_DELIVER, Intake, command_key, set_aside
from ffrtmp.scheduler.outbox import (
    Outgoing,
    control_message,
    publish,
    stop_message,
)
from ffrtmp.scheduler.snapshots import Snapshot, SnapshotStore

log = logging.getLogger(__name__)

CONFLICT_RETRIES: Final = 5
OUTAGE_PAUSE_S: Final = 0.5
EXPIRE_EVERY: Final = 65_536  # events replayed between sweeps of finished jobs


class ServiceSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the service runs around the core; defaults documented in the README."""

    core: SchedulerSettings = SchedulerSettings()
    tick_s: float = 0.25  # how often the clock is consulted
    lease_ttl_s: float = 5.0  # a dead leader's lease expires after this; standby takes over
    lead: bool = True  # False: never lead (a pure follower, for tests and tools)
    use_lease: bool = True  # False: lead without a lease (forcing two leaders in a test)
    snapshot_every_s: float = 30.0
    snapshot_min_events: int = 1000  # fewer new events than this: no new snapshot
    fetch_batch: int = 256
    ack_wait_s: float = 5.0  # an unacknowledged command returns to the next leader after this
    plan_batch: int = 500  # placements per round, between which commands and ticks run


class Stats(msgspec.Struct, kw_only=True):
    """Counters of what the service did, for logs, tests and the benchmark."""

    commands: int = 0
    refused: int = 0
    malformed: int = 0  # commands (and heartbeats) that do not decode: set aside
    conflicting: int = 0  # valid commands whose job moved under every try: set aside
    set_aside: int = 0  # stored events no reader applies (events.admit): skipped
    appended: int = 0
    conflicts: int = 0
    placements: int = 0
    rejections: int = 0
    controls: int = 0
    replayed: int = 0
    snapshots: int = 0
    takeovers: int = 0
    outages: int = 0


def _job_subject(subjects: Subjects, job: str, event: Event) -> str:
    """Where the scheduler appends a job's event: an assignment on its agent's subject."""
    if isinstance(event, JobAssigned):
        return subjects.assignment(job, event.agent)
    return subjects.job_event(job, SCHEDULER_WRITER)


class Scheduler:
    """One scheduler process: leader or warm standby; see the module doc."""

    def __init__(
        self,
        store: JetStreamEventStore,
        settings: ServiceSettings | None = None,
        *,
        name: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Decide over ``store``'s log; ``name`` identifies this process in the lease."""
        self.store = store
        self.subjects: Subjects = store.subjects
        self.settings = settings or ServiceSettings()
        self.name = name or f"sched-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.core = SchedulerCore(self.settings.core)
        self.stats = Stats()
        self.leading = asyncio.Event()
        self.ready = asyncio.Event()  # the core has caught up with the log once
        self._nc = store.nc
        self._js = store.nc.jetstream()
        self._wake = asyncio.Event()
        self._intake = Intake(
            self._js,
            self.subjects,
            self._wake,
            fetch_batch=self.settings.fetch_batch,
            ack_wait_s=self.settings.ack_wait_s,
            pause_s=OUTAGE_PAUSE_S,
        )
        self._inbox = self._intake.inbox
        self._door = Door(self._nc, self.subjects, self._inbox, self._wake)
        self._held: list[Delivery] = []  # commands whose appends met an outage: decided again
        self._outage = False  # an append of the current commit failed for want of the store
        self._snapshots = SnapshotStore(self._js, self.subjects)
        self._lease = lease.Lease(
            self._js, self.subjects, self.name, ttl_s=self.settings.lease_ttl_s
        )
        self._snapshot_seq = 0
        self._snapshot_at = 0.0
        self._saving: asyncio.Task[None] | None = None
        self._returned: set[str] = set()  # lost agents heard from again

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        """Recover, then follow and (when leading) decide until cancelled."""
        await self.recover()
        heartbeats = await self._nc.subscribe(self.subjects.all_heartbeats, cb=self._on_heartbeat)
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self._follow(), name="follow")
                if self.settings.lead:
                    tasks.create_task(self._lead(), name="lead")
        finally:
            with contextlib.suppress(Exception):
                await heartbeats.unsubscribe()
            if self._saving is not None:
                with contextlib.suppress(Exception):
                    await self._saving
            if self._lease.held:
                with contextlib.suppress(Exception):
                    await self._lease.release()

    async def recover(self) -> float:
        """Load the newest snapshot, replay the tail; seconds it took."""
        started = time.perf_counter()
        now = self.clock()
        await self._snapshots.open()
        snapshot = await self._snapshots.load()
        if snapshot is not None:
            try:
                state = msgspec.msgpack.decode(snapshot.payload, type=SchedulerSnapshot)
            except (msgspec.DecodeError, RecursionError) as exc:
                log.warning("snapshot unreadable (%s); replaying the whole log", exc)
            else:
                self.core = SchedulerCore.restore(state, now, self.settings.core)
                self._snapshot_seq = state.covered
        async for seq, event in self.store.replay(self.core.covered + 1):
            if isinstance(event, JobEventBase | AgentEventBase):
                self.core.apply(seq, event, now)
            elif isinstance(event, SetAside):
                self._set_aside_event(seq, event)
            self.core.advance(seq)
            self.stats.replayed += 1
            if self.stats.replayed % EXPIRE_EVERY == 0:
                self.core.expire(now)  # a long history never holds all its jobs at once
        self.core.expire(now)
        await self._learn_unknown()
        self.core.grace(now)
        self.ready.set()
        return time.perf_counter() - started

    async def _follow(self) -> None:
        """Apply every new event; wake the decider when there is something to act on.

        A read the server cannot serve for a while (a cluster electing a leader, a restart)
        is opened again from the last event applied, so the follower outlives any outage.
        """
        while True:
            try:
                async for seq, event in self.store.follow(self.core.covered + 1):
                    if isinstance(event, JobEventBase | AgentEventBase):
                        self.core.apply(seq, event, self.clock())
                    elif isinstance(event, SetAside):
                        self._set_aside_event(seq, event)
                    self.core.advance(seq)
                    await self._learn_unknown()
                    if self.core.dirty:
                        self._wake.set()
            except StoreUnavailable as exc:
                raise_if_cancelling()
                self.stats.outages += 1
                log.warning("follower paused: %s", exc)
                await asyncio.sleep(OUTAGE_PAUSE_S)

    def _set_aside_event(self, seq: int, event: SetAside) -> None:
        """Count a stored message no reader applies; it still moves its job's last sequence."""
        self.stats.set_aside += 1
        job = job_of(event.subject)
        if job:
            self.core.passed(seq, job)

    async def _on_heartbeat(self, msg: Msg) -> None:
        try:
            heartbeat = decode_heartbeat(msg.data)
        except MalformedMessage as exc:
            self.stats.malformed += 1
            log.warning("heartbeat on %s set aside: %s", msg.subject, exc)
            return
        self.core.heard_from(heartbeat, self.clock())
        if self.core.is_lost(heartbeat.agent):
            self._returned.add(heartbeat.agent)
            self._wake.set()

    async def _lead(self) -> None:
        """Hold the lease (or wait for it) and decide while holding it."""
        while True:
            if self.settings.use_lease:
                await lease.acquire(self._lease)
            self.stats.takeovers += 1
            try:
                await self._door.open()  # before anyone can see us lead
                self.leading.set()
                log.info("%s leads", self.name)
                await self._lead_once()
            finally:
                self.leading.clear()
                await self._door.close()
            log.warning("%s lost the lease; following as standby", self.name)

    async def _lead_once(self) -> None:
        """Take commands and decide until the lease is lost; without a lease, until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            leading = [
                tasks.create_task(self._intake.run(), name="intake"),
                tasks.create_task(self._decide(), name="decide"),
            ]
            if self.settings.use_lease:
                await lease.keep(self._lease)
                for task in leading:
                    task.cancel()

    # --- deciding ---------------------------------------------------------------------------

    async def _decide(self) -> None:
        """The decider: take over, then commands, clock and placement, forever."""
        await self._take_over()
        self._held = []  # held under an earlier lead: the server redelivers them to the leader
        next_tick = 0.0
        while True:
            timeout = max(0.0, next_tick - self.clock())
            if self._inbox.empty() and not self._held and not self.core.dirty:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):  # wait_for loses a racing cancel
                        await self._wake.wait()
            try:
                next_tick = await self._step(next_tick)
            except (FfrtmpError, *FAILURES) as exc:
                raise_if_cancelling()  # nats-py turns a cancel into its own error at times
                # The server restarting or unreachable: nothing was decided that did not land,
                # so wait a moment and go on from what the log says.
                await self._pause(str(exc))

    async def _pause(self, why: str) -> None:
        """The log takes no appends for now: count it, say why, wait a moment."""
        self.stats.outages += 1
        log.warning("decider paused: %s", why)
        await asyncio.sleep(OUTAGE_PAUSE_S)

    async def _step(self, next_tick: float) -> float:
        """One round: waiting commands, the clock when due, placement while there is room.

        Commands held for want of the store end the round with a pause: nothing else is
        decided until the log takes their appends.
        """
        held = await self._commands()
        if held:
            await self._pause(f"{held} commands held until the log takes appends")
            return next_tick
        now = self.clock()
        if now >= next_tick:
            next_tick = now + self.settings.tick_s
            await self._tick(now)
        if self.core.dirty:  # one pass per round: a long backlog never holds commands back
            await self._place(self.clock())
        await self._maybe_snapshot(now)
        return next_tick

    async def _take_over(self) -> None:
        """Re-send the control requests the log says are outstanding; dedup makes it safe.

        Assignments are not re-sent: each is an event its agent's consumer reads from the log.
        """
        now = self.clock()
        self.core.grace(now)
        controls = [
            self._control(state.job, "", now)
            for state in list(self.core.control_outstanding())
            if state.requested is not None
        ]
        await publish(self._js, [m for m in controls if m is not None])

    async def _commands(self) -> int:
        """Decide every waiting command; one round per job, appends pipelined per round.

        Returns how many commands are held because the store was away (0 when none is).
        """
        msgs, self._held = self._held, []
        while not self._inbox.empty() and len(msgs) < self.settings.fetch_batch:
            msgs.append(self._inbox.get_nowait())
        while msgs:
            seen: set[str] = set()
            later: list[Delivery] = []
            round_: list[tuple[Delivery, OperatorCommand]] = []
            for msg in msgs:
                command = await self._decode(msg)
                if command is None:
                    continue
                key = command_key(command)
                if key in seen:
                    later.append(msg)
                    continue
                seen.add(key)
                round_.append((msg, command))
            held = await self._decide_commands(round_)
            if held:
                # A request answered "held" is stored by its asker: only that copy is decided.
                self._held = [msg for msg in held + later if owed(msg)]
                return len(held)
            msgs = later
        return 0

    async def _decode(self, msg: Delivery) -> OperatorCommand | None:
        try:
            command = accept_command(msg.data)
        except MalformedMessage as exc:
            self.stats.malformed += 1
            await set_aside(self.store, msg, Aside.MALFORMED, exc.reason, self.clock())
            return None
        wrong_door = refusal(msg, command, self.subjects)
        if wrong_door:
            self.stats.malformed += 1
            await set_aside(self.store, msg, Aside.MALFORMED, wrong_door, self.clock())
            return None
        return command

    async def _set_aside_conflicting(self, msg: Delivery, command: OperatorCommand) -> None:
        """Count a valid command that kept conflicting and set it aside (``intake.set_aside``)."""
        self.stats.conflicting += 1
        moved = (
            f"agent {command.agent}"
            if isinstance(command, AgentCommandBase)
            else f"job {command.job}"
        )
        reason = (
            f"{command.id} ({type(command).__name__}) kept conflicting: {moved} moved under"
            f" every try over {msg.metadata.num_delivered} deliveries; the command is valid,"
            " send it again"
        )
        await set_aside(self.store, msg, Aside.CONFLICTING, reason, self.clock())

    async def _decide_commands(
        self, round_: Sequence[tuple[Delivery, OperatorCommand]]
    ) -> list[Delivery]:
        """Decide, commit and acknowledge; the commands to hold because the store was away.

        A command whose append conflicts is decided again from the re-read job, and set aside
        only when it keeps conflicting over several deliveries. One whose append found no
        store (a restart, a cluster electing a stream leader) is held here and decided again
        after a pause, without a redelivery: deliveries are capped, and an outage that used
        them up would set a valid command aside, losing the job it submits.
        """
        pending = list(round_)
        for _ in range(CONFLICT_RETRIES):
            if not pending:
                return []
            # A job the core does not hold is decided as new, expecting sequence 0: if the log
            # knows it after all (forgotten, or only refusals so far), the append conflicts and
            # the job is read from the store for the next try. No read on the hot path.
            now = self.clock()
            decisions = [self.core.on_command(command, now) for _, command in pending]
            self._outage = False
            try:
                outcomes = await self._commit(decisions, now)
            except StoreUnavailable as exc:
                raise_if_cancelling()
                log.warning("commands held: %s", exc)
                self._outage, outcomes = True, [False] * len(decisions)
            retry = []
            for (msg, command), decision, ok in zip(pending, decisions, outcomes, strict=True):
                if ok:
                    self.stats.commands += 1
                    refused = any(isinstance(e, CommandRefused) for e in decision.events)
                    self.stats.refused += refused
                    await msg.ack()
                else:
                    retry.append((msg, command))
            pending = retry
            if pending and self._outage:
                held = [msg for msg, _ in pending]
                for msg in held:  # restart the ack timer so the server does not redeliver
                    with contextlib.suppress(*FAILURES):
                        await msg.in_progress()
                return held
        for msg, command in pending:
            if msg.metadata.num_delivered >= MAX_DELIVER:
                await self._set_aside_conflicting(msg, command)
                continue
            log.warning("command %s kept conflicting; it will be redelivered", command.id)
            await msg.nak(delay=1.0)
        return []

    async def _tick(self, now: float) -> None:
        returned = [self.core.returned(agent, now) for agent in sorted(self._returned)]
        self._returned.clear()
        tick = self.core.tick(now)
        await self._commit([*returned, *tick.decisions], now)
        self.core.ticked(tick)  # after the commit: one that raised is decided again next tick
        self.core.expire(now)

    async def _place(self, now: float) -> None:
        plan = self.core.plan(now, self.settings.plan_batch)
        if plan.decisions:
            await self._commit(plan.decisions, now)
        self.core.planned(plan)  # after the commit: one that raised leaves the core dirty

    # --- appending --------------------------------------------------------------------------

    async def _commit(self, decisions: Sequence[Decision], now: float) -> list[bool]:
        """Append decisions (pipelined), apply what landed, send what follows from it.

        A decision whose append conflicts is dropped after its job is re-read: the next pass
        decides again from what the log now says. Returns, per decision, whether it landed.
        """
        singles = [i for i, d in enumerate(decisions) if len(d.events) == 1]
        items = [self._append_item(decisions[i], 0, decisions[i].expected) for i in singles]
        results = await append_grouped(self.store, items)  # one fsync per batch, not per event
        landed = [True] * len(decisions)  # a decision of no events has nothing to land
        sends: list[Outgoing] = []
        for i, result in zip(singles, results, strict=True):
            landed[i] = await self._landed(decisions[i], [result], now, sends)
        for i, decision in enumerate(decisions):
            if len(decision.events) > 1:
                landed[i] = await self._commit_chain(decision, now, sends)
        await publish(self._js, sends)
        return landed

    async def _commit_chain(self, decision: Decision, now: float, sends: list[Outgoing]) -> bool:
        """A decision of several events: appended one after another, each expecting the last."""
        results: list[int | Exception] = []
        expected = decision.expected
        for index in range(len(decision.events)):
            try:
                seq = await self.store.append(self._append_item(decision, index, expected))
            except (ConcurrencyConflict, StoreUnavailable) as exc:
                results.append(exc)
                break
            results.append(seq)
            expected = seq
        return await self._landed(decision, results, now, sends)

    def _append_item(self, decision: Decision, index: int, expected: int) -> Append:
        match decision:
            case JobDecision():
                subject = _job_subject(self.subjects, decision.job, decision.events[index])
                over = self.subjects.job_events(decision.job)
            case AgentDecision():
                subject = over = self.subjects.agent_event(decision.agent)
            case _:
                assert_never(decision)
        return Append(
            subject=subject,
            event=decision.events[index],
            msg_id=decision.msg_ids[index],
            expected=expected,
            expected_subject=over,
        )

    async def _landed(
        self,
        decision: Decision,
        results: Sequence[int | Exception],
        now: float,
        sends: list[Outgoing],
    ) -> bool:
        """Apply the events that landed; re-read the job on a conflict; queue what to send."""
        for event, result in zip(decision.events, results, strict=False):
            if isinstance(result, Exception):
                await self._refused(decision, result)
                return False
            self.stats.appended += 1
            self.core.apply(result, event, now)
            self._follow_up(decision, event, now, sends)
        return len(results) == len(decision.events)

    async def _refused(self, decision: Decision, error: Exception) -> None:
        if isinstance(error, ConcurrencyConflict):
            self.stats.conflicts += 1
            if isinstance(decision, JobDecision):
                await self._learn(decision.job)
            return
        if isinstance(error, StoreUnavailable):
            self._outage = True
        whose = decision.job if isinstance(decision, JobDecision) else decision.agent
        log.warning("append for %s failed: %s", whose, error)

    def _follow_up(
        self,
        decision: Decision,
        event: Event,
        now: float,
        sends: list[Outgoing],
    ) -> None:
        if not isinstance(decision, JobDecision):
            return  # an agent's events owe no work message
        match event:
            case JobAssigned():  # the assignment is the dispatch: its agent's consumer reads it
                self.stats.placements += 1
            case JobControlRequested():
                send = self._control(decision.job, event.cause, now)
                if send is not None:
                    sends.append(send)
            case JobRejected():
                self.stats.rejections += 1
            case JobTimedOut():
                sends.append(self._stop_attempt(event, now))
            case _:
                pass

    async def _learn_unknown(self) -> None:
        """Load the forgotten jobs the log just moved again (an operator retried one)."""
        while self.core.unknown:
            job = self.core.unknown.pop()
            await self._learn(job)

    async def _learn(self, job: str) -> None:
        """Read one job's history from the store into the core."""
        loaded = await self.store.load(job)
        events = [(s, e) for s, e in loaded.events if isinstance(e, JobEventBase)]
        if self.core.state_of(job) is not None:
            for seq, event in events:
                self.core.apply(seq, event, self.clock())
            self.core.passed(loaded.last_seq, job)  # set-aside messages count too
            return
        state = fold(job, [e for _, e in events])
        self.core.adopt(job, loaded.last_seq, state)

    # --- sending ----------------------------------------------------------------------------

    def _control(self, job: str, cause: str, now: float) -> Outgoing | None:
        state = self.core.state_of(job)
        message = control_message(self.subjects, state, cause, self.core.seqs.get(job, 0), now)
        self.stats.controls += message is not None
        return message

    def _stop_attempt(self, event: JobTimedOut, now: float) -> Outgoing:
        self.stats.controls += 1
        return stop_message(self.subjects, event, now)

    # --- snapshots --------------------------------------------------------------------------

    async def _maybe_snapshot(self, now: float) -> None:
        if now - self._snapshot_at < self.settings.snapshot_every_s:
            return
        if self.core.covered - self._snapshot_seq < self.settings.snapshot_min_events:
            return
        if self._saving is not None and not self._saving.done():
            return
        await self.snapshot(now, wait=False)

    async def snapshot(self, now: float | None = None, *, wait: bool = True) -> int:
        """Save the core's state; the save runs in the background unless ``wait``."""
        now = self.clock() if now is None else now
        state = self.core.snapshot()
        payload = msgspec.msgpack.encode(state)
        self._snapshot_at, self._snapshot_seq = now, state.covered
        snapshot = Snapshot(covered_seq=state.covered, taken_at=now, payload=payload)
        self._saving = asyncio.create_task(self._save(snapshot))
        if wait:
            await self._saving
        return state.covered

    async def _save(self, snapshot: Snapshot) -> None:
        try:
            await self._snapshots.save(snapshot)
        except FfrtmpError as exc:  # the snapshot store translates NATS failures
            log.warning("snapshot at %d not saved: %s", snapshot.covered_seq, exc)
            return
        self.stats.snapshots += 1
