"""The scheduler service: the pure core wired to the log, the commands, the heartbeats, the clock.

One asyncio task decides (the *decider*); the others feed it. The follower applies every event
of the log to the core (its own appends included: the core skips what it has applied), the
heartbeat subscription notes who is alive, and the intake pulls operator commands from the
durable ``scheduler`` consumer. The decider turns commands, the clock and free room into
decisions, appends them under per-job optimistic concurrency, applies what landed, and only
then acknowledges commands and publishes dispatches and control messages.

Start: the newest snapshot, then the log's tail, then (as leader) the dispatches and control
messages the log says are outstanding go out again; the work stream's dedup (``Nats-Msg-Id``
job:attempt) and the agents' own concurrency check make that safe. There is no other recovery
path. Leadership is a KV lease: a standby keeps its core warm from the log and starts deciding
when it takes the lease. A stale leader cannot do harm: its appends fail the concurrency check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Final

import msgspec
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext
from nats.js.errors import FetchTimeoutError

from events import dedup
from events.admit import job_of
from events.aio import raise_if_cancelling
from events.base import AgentEventBase, Event, JobEventBase, SetAside
from events.codec import accept_command, decode_heartbeat, encode
from events.commands import AgentCommandBase, OperatorCommand
from events.enums import ControlAction
from events.errors import (
    ConcurrencyConflict,
    FfrtmpError,
    InvalidSpec,
    MalformedMessage,
    StoreUnavailable,
)
from events.ids import check_id
from events.jetstream import JetStreamEventStore
from events.job import fold
from events.job_events import (
    CommandRefused,
    JobAssigned,
    JobControlRequested,
    JobRejected,
    JobTimedOut,
)
from events.limits import check_command_id
from events.store import Append
from events.subjects import MSG_ID, SCHEDULER_WRITER, Subjects
from events.work import Control, Dispatch
from ffrtmp.scheduler.core import Decision, SchedulerCore, SchedulerSettings, SchedulerSnapshot
from ffrtmp.scheduler.lease import Lease
from ffrtmp.scheduler.snapshots import Snapshot, SnapshotStore

log = logging.getLogger(__name__)

CONSUMER: Final = "scheduler"
MAX_DELIVER: Final = 5
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
    malformed: int = 0
    set_aside: int = 0  # stored events no reader applies (events.admit): skipped
    appended: int = 0
    conflicts: int = 0
    placements: int = 0
    rejections: int = 0
    dispatches: int = 0
    controls: int = 0
    replayed: int = 0
    snapshots: int = 0
    takeovers: int = 0
    outages: int = 0


class _Peek(msgspec.Struct):
    """What can be read of a command that does not decode, to record its refusal."""

    id: str = ""
    job: str = ""
    type: str = ""


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
        self._inbox: asyncio.Queue[Msg] = asyncio.Queue(maxsize=4 * self.settings.fetch_batch)
        self._held: list[Msg] = []  # commands whose appends met an outage: decided again first
        self._outage = False  # an append of the current commit failed for want of the store
        self._snapshots = SnapshotStore(self._js, self.subjects)
        self._lease = Lease(self._js, self.subjects, self.name, ttl_s=self.settings.lease_ttl_s)
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
        if self.core.heard_from(heartbeat, self.clock()):
            self._returned.add(heartbeat.agent)
            self._wake.set()

    async def _lead(self) -> None:
        """Hold the lease (or wait for it) and decide while holding it."""
        while True:
            if self.settings.use_lease:
                await self._acquire()
            self.stats.takeovers += 1
            self.leading.set()
            log.info("%s leads", self.name)
            try:
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._intake(), name="intake")
                    decider = tasks.create_task(self._decide(), name="decide")
                    if self.settings.use_lease:
                        await self._keep_lease()
                        decider.cancel()
                        _lost_lease()
            except* _LostLease:
                log.warning("%s lost the lease; following as standby", self.name)
            finally:
                self.leading.clear()

    async def _acquire(self) -> None:
        """Wait until this process holds the lease, trying every third of its time to live.

        Opening the bucket is retried like the rest: a server or cluster node going away while
        a standby waits must not end the scheduler.
        """
        opened = False
        while True:
            try:
                if not opened:
                    await self._lease.open()
                    opened = True
                if await self._lease.try_acquire():
                    return
            except (FfrtmpError, NatsError) as exc:
                raise_if_cancelling()
                log.warning("lease unreachable: %s", exc)
            await asyncio.sleep(self._lease.ttl_s / 3)

    async def _keep_lease(self) -> None:
        """Renew every third of the lease time; return when the lease is lost or lapses."""
        while True:
            await asyncio.sleep(self._lease.ttl_s / 3)
            try:
                if not await self._lease.renew():
                    return
            except (FfrtmpError, NatsError) as exc:
                raise_if_cancelling()
                log.warning("lease renewal failed: %s", exc)
                if not self._lease.held:  # lapsed by our own clock: a standby may lead now
                    return

    # --- intake -----------------------------------------------------------------------------

    async def _intake(self) -> None:
        """Pull commands from the durable consumer into the decider's inbox."""
        config = ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=MAX_DELIVER,
            ack_wait=self.settings.ack_wait_s,
            filter_subject=self.subjects.all_commands,
            max_ack_pending=-1,
        )
        sub = await self._pull_subscribe(config)
        try:
            while True:
                try:
                    msgs = await sub.fetch(self.settings.fetch_batch, timeout=1.0)
                except (FetchTimeoutError, TimeoutError):
                    continue
                except NatsError as exc:  # reconnecting: the durable consumer keeps our place
                    raise_if_cancelling()
                    log.warning("command intake paused: %s", exc)
                    await asyncio.sleep(OUTAGE_PAUSE_S)
                    continue
                for msg in msgs:
                    await self._inbox.put(msg)
                self._wake.set()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _pull_subscribe(self, config: ConsumerConfig) -> JetStreamContext.PullSubscription:
        """Bind the durable command consumer, through an outage: leading starts during one."""
        while True:
            try:
                return await self._js.pull_subscribe(
                    self.subjects.all_commands,
                    durable=CONSUMER,
                    stream=self.subjects.commands_stream,
                    config=config,
                )
            except (NatsError, TimeoutError) as exc:  # a stream leader being elected, say
                raise_if_cancelling()
                log.warning("command intake waits for the commands stream: %s", exc)
                await asyncio.sleep(OUTAGE_PAUSE_S)

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
            except (FfrtmpError, NatsError, TimeoutError) as exc:
                raise_if_cancelling()  # nats-py turns a cancel into its own error at times
                # The server restarting or unreachable: nothing was decided that did not land,
                # so wait a moment and go on from what the log says.
                self.stats.outages += 1
                log.warning("decider paused: %s", exc)
                await asyncio.sleep(OUTAGE_PAUSE_S)

    async def _step(self, next_tick: float) -> float:
        """One round: waiting commands, the clock when due, placement while there is room."""
        await self._commands()
        now = self.clock()
        if now >= next_tick:
            next_tick = now + self.settings.tick_s
            await self._tick(now)
        if self.core.dirty:  # one pass per round: a long backlog never holds commands back
            await self._place(self.clock())
        await self._maybe_snapshot(now)
        return next_tick

    async def _take_over(self) -> None:
        """Re-send what the log says is outstanding; dedup and concurrency make it safe."""
        now = self.clock()
        self.core.grace(now)
        dispatches = [
            self._dispatch(state.job, self.core.seqs[state.job], now)
            for state in list(self.core.assigned_not_started())
        ]
        controls = [
            self._control(state.job, "", now)
            for state in list(self.core.control_outstanding())
            if state.requested is not None
        ]
        await self._send([d for d in dispatches + controls if d is not None])

    async def _commands(self) -> None:
        """Decide every waiting command; one round per job, appends pipelined per round."""
        msgs, self._held = self._held, []
        while not self._inbox.empty() and len(msgs) < self.settings.fetch_batch:
            msgs.append(self._inbox.get_nowait())
        while msgs:
            seen: set[str] = set()
            later: list[Msg] = []
            round_: list[tuple[Msg, OperatorCommand]] = []
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
                self._held = held + later
                raise FfrtmpError(f"{len(self._held)} commands held until the log takes appends")
            msgs = later

    async def _decode(self, msg: Msg) -> OperatorCommand | None:
        try:
            return accept_command(msg.data)
        except MalformedMessage as exc:
            await self._set_aside(msg, exc)
            return None

    async def _set_aside(self, msg: Msg, exc: MalformedMessage) -> None:
        """Record a malformed command's refusal where it names a job, dead-letter it, drop it."""
        self.stats.malformed += 1
        log.warning("command on %s set aside: %s", msg.subject, exc)
        with contextlib.suppress(
            msgspec.DecodeError, UnicodeDecodeError, RecursionError, FfrtmpError
        ):
            peek = msgspec.json.decode(msg.data, type=_Peek)
            if peek.job and peek.id and _valid_ids(peek):
                refusal = CommandRefused(
                    job=peek.job,
                    at=self.clock(),
                    cause=peek.id,
                    command_id=peek.id,
                    command=(peek.type or "?")[:64],
                    reason=f"malformed command: {exc.reason}"[:512],
                )
                item = Append(
                    subject=self.subjects.job_event(peek.job, SCHEDULER_WRITER),
                    event=refusal,
                    msg_id=dedup.malformed_command(peek.id),
                )
                await self.store.append(item)
        why = " ".join(exc.reason[:200].split())  # one header line whatever the reason holds
        headers = {"Ffrtmp-Error": why, "Ffrtmp-Subject": msg.subject}
        await self._nc.publish(self.subjects.dead_letter("cmd"), msg.data, headers=headers)
        await msg.term()

    async def _decide_commands(self, round_: Sequence[tuple[Msg, OperatorCommand]]) -> list[Msg]:
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
                    with contextlib.suppress(NatsError, TimeoutError):
                        await msg.in_progress()
                return held
        for msg, command in pending:
            if msg.metadata.num_delivered >= MAX_DELIVER:
                await self._set_aside(msg, MalformedMessage(f"kept conflicting: {command.id}"))
                continue
            log.warning("command %s kept conflicting; it will be redelivered", command.id)
            await msg.nak(delay=1.0)
        return []

    async def _tick(self, now: float) -> None:
        returned = [self.core.returned(agent, now) for agent in sorted(self._returned)]
        self._returned.clear()
        await self._commit(returned + self.core.tick(now), now)
        self.core.expire(now)

    async def _place(self, now: float) -> None:
        decisions = self.core.plan(now, self.settings.plan_batch)
        if not decisions:
            return
        await self._commit(decisions, now)

    # --- appending --------------------------------------------------------------------------

    async def _commit(self, decisions: Sequence[Decision], now: float) -> list[bool]:
        """Append decisions (pipelined), apply what landed, send what follows from it.

        A decision whose append conflicts is dropped after its job is re-read: the next pass
        decides again from what the log now says. Returns, per decision, whether it landed.
        """
        singles = [d for d in decisions if len(d.events) <= 1]
        items = [self._append_item(d, 0, d.expected) for d in singles if d.events]
        results = iter(await self.store.append_many(items)) if items else iter(())
        landed: dict[int, bool] = {}
        sends: list[tuple[str, bytes, str]] = []
        for decision in singles:
            if not decision.events:
                landed[id(decision)] = True
                continue
            result = next(results)
            landed[id(decision)] = await self._landed(decision, [result], now, sends)
        for decision in decisions:
            if len(decision.events) > 1:
                landed[id(decision)] = await self._commit_chain(decision, now, sends)
        await self._send(sends)
        return [landed[id(d)] for d in decisions]

    async def _commit_chain(
        self, decision: Decision, now: float, sends: list[tuple[str, bytes, str]]
    ) -> bool:
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
        if decision.job:
            subject = self.subjects.job_event(decision.job, SCHEDULER_WRITER)
            over = self.subjects.job_events(decision.job)
        else:
            subject = over = self.subjects.agent_event(decision.agent)
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
        sends: list[tuple[str, bytes, str]],
    ) -> bool:
        """Apply the events that landed; re-read the job on a conflict; queue what to send."""
        for event, result in zip(decision.events, results, strict=False):
            if isinstance(result, Exception):
                await self._refused(decision, result)
                return False
            self.stats.appended += 1
            self.core.apply(result, event, now)
            self._follow_up(decision, event, result, now, sends)
        return len(results) == len(decision.events)

    async def _refused(self, decision: Decision, error: Exception) -> None:
        if isinstance(error, ConcurrencyConflict):
            self.stats.conflicts += 1
            if decision.job:
                await self._learn(decision.job)
            return
        if isinstance(error, StoreUnavailable):
            self._outage = True
        log.warning("append for %s failed: %s", decision.job or decision.agent, error)

    def _follow_up(
        self,
        decision: Decision,
        event: Event,
        seq: int,
        now: float,
        sends: list[tuple[str, bytes, str]],
    ) -> None:
        match event:
            case JobAssigned():
                self.stats.placements += 1
                send = self._dispatch(decision.job, seq, now)
                if send is not None:
                    sends.append(send)
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

    def _dispatch(self, job: str, seq: int, now: float) -> tuple[str, bytes, str] | None:
        state = self.core.state_of(job)
        if state is None or state.spec is None:
            return None
        dispatch = Dispatch(
            job=job,
            attempt=state.attempt,
            spec=state.spec,
            budget_s=state.budget_s,
            retries=state.retries,
            after_seq=seq,
            at=now,
            gpu=state.gpu,
            agent=state.agent,
        )
        self.stats.dispatches += 1
        return self.subjects.work(state.agent), encode(dispatch), dedup.dispatch(job, state.attempt)

    def _control(self, job: str, cause: str, now: float) -> tuple[str, bytes, str] | None:
        state = self.core.state_of(job)
        if state is None or not state.agent or state.requested is None:
            return None
        control = Control(
            job=job, attempt=state.attempt, action=state.requested, at=now, cause=cause
        )
        self.stats.controls += 1
        msg_id = dedup.control(
            job, state.attempt, state.requested, cause or str(self.core.seqs[job])
        )
        return self.subjects.work(state.agent), encode(control), msg_id

    def _stop_attempt(self, event: JobTimedOut, now: float) -> tuple[str, bytes, str]:
        """Tell the agent to stop an attempt that ran out of time, so its slot frees up."""
        control = Control(
            job=event.job,
            attempt=event.attempt,
            action=ControlAction.CANCEL,
            at=now,
            cause=event.cause,
        )
        self.stats.controls += 1
        msg_id = dedup.stop_timed_out(event.job, event.attempt)
        return self.subjects.work(event.agent), encode(control), msg_id

    async def _send(self, sends: Sequence[tuple[str, bytes, str]]) -> None:
        """Publish work messages, pipelined; a lost one is re-sent by the next leader's takeover."""
        if not sends:
            return
        acks = [
            await self._js.publish_async(subject, data, headers={MSG_ID: msg_id})
            for subject, data, msg_id in sends
        ]
        results = await asyncio.gather(*acks, return_exceptions=True)
        for (subject, _, _), result in zip(sends, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("work message to %s not acknowledged: %s", subject, result)

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
        except (FfrtmpError, OSError, TimeoutError) as exc:
            log.warning("snapshot at %d not saved: %s", snapshot.covered_seq, exc)
            return
        self.stats.snapshots += 1


def _valid_ids(peek: _Peek) -> bool:
    """Whether a refusal can be recorded under the command's job id and command id."""
    try:
        check_id(peek.job)
        check_command_id(peek.id)
    except InvalidSpec:
        return False
    return True


def command_key(command: OperatorCommand) -> str:
    """What a command is about: commands about the same thing are decided one after another."""
    if isinstance(command, AgentCommandBase):
        return f"agent:{command.agent}"
    return f"job:{command.job}"


class _LostLease(Exception):
    """Internal: the lease was lost while leading."""


def _lost_lease() -> None:
    raise _LostLease
