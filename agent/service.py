"""The agent service: register, pull work, run attempts in slots, heartbeat, drain on the way out.

One loop for every agent a farm runs, whatever does the work (``agent.engine``): FFmpeg on a
real machine, a scripted stand-in in the tests' ``SimAgent`` and ``ffrtmp bench e2e``. The service:

- registers (``AgentRegistered`` with capabilities and slots) and deregisters on a clean stop;
- reads its assignments (``JobAssigned`` on ``<prefix>.evt.job.*.sched.<id>``, each its own
  dispatch: ``agent.assignment``) from its durable consumer ``agent-<id>`` on the events stream,
  and controls (and dispatches an older scheduler sent) from its consumer of the same name on
  its work subject, at least one message at a time even when every slot is taken;
- refuses a dispatch beyond its free slots on the log (``Fail`` with ``resource_error``, which
  retries elsewhere) and sets aside a message that does not decode (dead-letter subject);
- runs each attempt (``agent.attempt``) fenced by ``agent.report.JobWriter``;
- heartbeats every ``heartbeat_s`` with its running attempts, free slots and hardware readings;
- on ``stop`` drains: stops pulling, lets attempts finish within ``drain_grace_s``, fails the
  rest with a retryable reason so the scheduler retries them elsewhere, then deregisters.
  ``stop(deregister=False)`` is a crash instead: everything stops, nothing more is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext

from agent.assignment import dispatch_of
from agent.attempt import Attempt, AttemptSettings, Context, Halt
from agent.engine import Engine
from agent.logs import open_logs
from agent.report import JobWriter
from agent.tally import AgentStats, AttemptKey, Journal
from agent.telemetry import Hardware
from events import dedup
from events.agent_events import AgentDeregistered, AgentRegistered, Capabilities
from events.aio import cancel_all, raise_if_cancelling
from events.base import Event
from events.codec import decode_work, encode
from events.commands import Fail
from events.deadletter import Aside, fit, headers
from events.enums import ControlAction, FailureReason
from events.errors import FfrtmpError, InvalidSpec, MalformedMessage
from events.ids import check_id
from events.limits import check_preset, check_spec_strings
from events.natserrors import FAILURES
from events.store import Append, EventStore
from events.subjects import Subjects
from events.work import Control, Dispatch, Heartbeat, WorkMessage

_log = logging.getLogger(__name__)

CPU_CORES_PER_SLOT: Final = 4
"""A software encode of 1080p keeps about four cores busy; a smaller machine still gets a slot."""
GPU_SLOTS_MAX: Final = 3
"""Slots a GPU adds at most (its NVENC sessions, capped: consumer cards allow few)."""


def default_slots(capabilities: Capabilities) -> int:
    """Slots for a machine: one per ``CPU_CORES_PER_SLOT`` cores, plus each GPU's sessions."""
    cpu = max(1, capabilities.cpu_cores // CPU_CORES_PER_SLOT)
    gpu = sum(min(g.nvenc_sessions, GPU_SLOTS_MAX) for g in capabilities.gpus)
    return cpu + gpu


Telemetry = Callable[[], Hardware]
"""Reads the machine at heartbeat time."""


class AgentSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How an agent runs; the defaults are those of ``ffrtmp agent run``."""

    slots: int = 1
    heartbeat_s: float = 5.0
    drain_grace_s: float = 30.0  # how long running attempts may finish on a clean stop
    cancel_wait_s: float = 30.0  # how long canceled attempts may take to report, after that
    slot_wait_s: float = 10.0  # how long a dispatch waits for a slot a canceled attempt frees
    attempt: AttemptSettings = AttemptSettings()
    fetch_s: float = 1.0  # one pull's wait; a pull left behind by a crash expires with it
    ack_wait_s: float = 10.0
    max_deliver: int = 5
    keep_logs: bool = True  # store each attempt's log tail in the <PREFIX>_LOGS bucket


class AgentService:
    """One agent on the wire: ``start``, then ``stop`` (a drain) or ``stop(deregister=False)``."""

    def __init__(
        self,
        nc: NatsClient,
        store: EventStore,
        subjects: Subjects,
        agent: str,
        capabilities: Capabilities,
        engine: Engine,
        settings: AgentSettings | None = None,
        *,
        telemetry: Telemetry | None = None,
        journal: Journal | None = None,
    ) -> None:
        """Describe the agent; nothing happens on the wire until ``start``."""
        self.agent = agent
        self.capabilities = capabilities
        self.settings = settings or AgentSettings()
        self.slots = self.settings.slots
        self.engine = engine
        self.stats = AgentStats()
        self.journal = journal
        self._nc, self._store, self._subjects = nc, store, subjects
        self._js: JetStreamContext = nc.jetstream()
        self._telemetry = telemetry
        self._attempts: dict[AttemptKey, Attempt] = {}
        self._stopping: set[AttemptKey] = set()  # attempts told to cancel, still holding slots
        self._freed = asyncio.Event()  # set whenever an attempt gives its slot back
        self._tasks: list[asyncio.Task[None]] = []
        self._pullers: list[asyncio.Task[None]] = []
        self._subs: list[JetStreamContext.PullSubscription] = []
        self._ctx: Context | None = None
        self._registration = ""

    @property
    def durable(self) -> str:
        """The agent's durable consumers' name, on the events and the work stream."""
        return f"agent-{self.agent}"

    @property
    def free_slots(self) -> int:
        """Slots not held by an attempt."""
        return max(0, self.slots - len(self._attempts))

    @property
    def running(self) -> list[AttemptKey]:
        """The attempts holding slots now."""
        return list(self._attempts)

    @property
    def connected(self) -> bool:
        """Whether the NATS connection is up."""
        return bool(self._nc.is_connected)

    async def start(self) -> None:
        """Open the log bucket, register, bind the consumer, start heartbeats and pulling."""
        logs = await open_logs(self._js, self._subjects) if self.settings.keep_logs else None
        settings = self.settings.attempt
        self._ctx = Context(self.agent, self.engine, settings, self.stats, self.journal, logs)
        self._registration = uuid.uuid4().hex[:12]
        registered = AgentRegistered(
            agent=self.agent,
            at=time.time(),
            cause=f"registration:{self._registration}",
            capabilities=self.capabilities,
            slots=self.slots,
        )
        # Bound before registering: nothing is assigned here before the consumer exists.
        assigned = await self._subscribe(
            self._subjects.assignments_to(self.agent),
            self._subjects.events_stream,
            DeliverPolicy.NEW,
        )
        await self._append_agent_event(registered)
        work = await self._subscribe(
            self._subjects.work(self.agent), self._subjects.work_stream, DeliverPolicy.ALL
        )
        self._subs = [assigned, work]
        self._pullers = [
            asyncio.create_task(self._pull(sub), name=f"{self.agent}-pull-{i}")
            for i, sub in enumerate(self._subs)
        ]
        self._tasks = [asyncio.create_task(self._beat(), name=f"{self.agent}-heartbeat")]

    async def _subscribe(
        self, subject: str, stream: str, start: DeliverPolicy
    ) -> JetStreamContext.PullSubscription:
        """The agent's durable pull consumer on ``stream`` filtered on ``subject``.

        On the events stream a new one starts at the end (``new``): the log's past assignments
        are not this agent's to run, and a filter with a wildcard in the middle would make the
        server match every job's subjects to find where ``all`` starts.
        """
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self.settings.ack_wait_s,
            max_deliver=self.settings.max_deliver,
            deliver_policy=start,
        )
        return await self._js.pull_subscribe(
            subject, durable=self.durable, stream=stream, config=config
        )

    async def stop(self, *, deregister: bool = True) -> None:
        """Drain and deregister; ``deregister=False`` is a crash: stop, write nothing more."""
        await self._stop_pulling()
        if deregister:
            await self._drain()
        tasks = [*self._tasks, *(a.task for a in self._attempts.values() if a.task)]
        self._tasks = []
        await cancel_all(tasks, self.settings.fetch_s)
        if deregister and self._registration:
            gone = AgentDeregistered(
                agent=self.agent,
                at=time.time(),
                cause=f"registration:{self._registration}",
                reason="stopped",
            )
            await self._append_agent_event(gone)
        self._registration = ""

    async def _stop_pulling(self) -> None:
        pullers, self._pullers = self._pullers, []
        if pullers:
            await cancel_all(pullers, self.settings.fetch_s)
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(*FAILURES):
                await sub.unsubscribe()
        if subs:
            with contextlib.suppress(*FAILURES):
                await self._nc.flush()

    async def _drain(self) -> None:
        """Let attempts finish within the grace period; fail the rest so they retry elsewhere."""
        await self._settle(self.settings.drain_grace_s)
        why = f"agent {self.agent} shut down before the attempt finished; retried elsewhere"
        for attempt in list(self._attempts.values()):
            fail = Fail(
                agent=self.agent,
                attempt=attempt.key[1],
                reason=FailureReason.RESOURCE_ERROR,
                message=why,
            )
            await attempt.halt(Halt(report=fail))
        await self._settle(self.settings.cancel_wait_s)

    async def _settle(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for the attempts running now to end."""
        tasks = [a.task for a in self._attempts.values() if a.task]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    async def _append_agent_event(self, event: Event) -> None:
        await self._store.append(
            Append(
                subject=self._subjects.agent_event(self.agent),
                event=event,
                msg_id=dedup.agent_lifecycle(self.agent, type(event).__name__, self._registration),
            )
        )

    # heartbeats

    async def _beat(self) -> None:
        while True:
            await self.heartbeat()
            await asyncio.sleep(self.settings.heartbeat_s)

    async def heartbeat(self) -> None:
        """Publish the agent's state now (core NATS: the heartbeat stream keeps the last)."""
        hardware = self._read_hardware()
        beat = Heartbeat(
            agent=self.agent,
            at=time.time(),
            slots=self.slots,
            free_slots=self.free_slots,
            running=tuple(attempt.running() for attempt in self._attempts.values()),
            **msgspec.structs.asdict(hardware),
        )
        try:
            await self._nc.publish(self._subjects.heartbeat(self.agent), encode(beat))
        except FAILURES as exc:
            raise_if_cancelling()
            _log.warning("%s: heartbeat not sent: %s", self.agent, exc)
        else:
            self.stats.heartbeats += 1

    def _read_hardware(self) -> Hardware:
        if self._telemetry is None:
            return Hardware()
        try:
            return self._telemetry()
        except Exception:  # noqa: BLE001 -- a reading must never stop the heartbeat
            _log.exception("%s: hardware readings failed", self.agent)
            return Hardware()

    # the work subject

    async def _pull(self, sub: JetStreamContext.PullSubscription) -> None:
        while self._pullers:  # a cancel lost inside nats-py still ends the loop
            try:
                # As many as there is room for: one per round trip held an assignment a median
                # 410 ms before its start in a burst (BENCHMARKS.md, e2e).
                msgs = await sub.fetch(max(1, self.free_slots), timeout=self.settings.fetch_s)
            except TimeoutError:  # acted on: nothing came, pull again
                continue
            except ConnectionClosedError:  # acted on: closed for good, so stop pulling
                return
            except FAILURES as exc:
                raise_if_cancelling()
                _log.warning("%s: pull failed: %s", self.agent, exc)
                await asyncio.sleep(self.settings.fetch_s)  # reconnecting: poll gently
                continue
            for msg in msgs:
                try:
                    await self._handle(msg)
                except FAILURES as exc:  # an ack lost: the message comes back, and is fenced
                    raise_if_cancelling()
                    _log.warning("%s: %s", self.agent, exc)

    async def _handle(self, msg: Msg) -> None:
        try:
            work = self._decoded(msg)
        except MalformedMessage as exc:
            await self._set_aside(msg, exc)
            return
        await msg.ack()
        try:
            if isinstance(work, Dispatch):
                await self._on_dispatch(work)
            else:
                self._on_control(work)
        except FfrtmpError as exc:
            self.stats.errors += 1
            _log.warning("%s: %s", self.agent, exc)

    def _decoded(self, msg: Msg) -> WorkMessage:
        """An assignment from the events stream as its dispatch, or a work message."""
        if self._subjects.parse_job_subject(msg.subject) is not None:
            seq = msg.metadata.sequence.stream
            work: WorkMessage = dispatch_of(self.agent, msg.subject, msg.data, seq)
        else:
            work = decode_work(msg.data)
        return _accepted(work, msg.data)

    async def _set_aside(self, msg: Msg, exc: MalformedMessage) -> None:
        """Count it, copy it to the dead-letter subject, and never see it again."""
        self.stats.malformed += 1
        _log.warning("%s: %s; set aside", self.agent, exc.reason)
        fields = headers(Aside.MALFORMED, exc.reason, msg.subject)
        data, fields = fit(msg.data, fields, self._nc.max_payload)
        await self._nc.publish(self._subjects.dead_letter(self.durable), data, headers=fields)
        await msg.term()

    def wants(self, dispatch: Dispatch) -> bool:  # noqa: ARG002 -- a hook for SimAgent
        """Whether to act on a dispatch at all (a simulated agent may play a lost one)."""
        return True

    async def _on_dispatch(self, dispatch: Dispatch) -> None:
        key = (dispatch.job, dispatch.attempt)
        self.stats.dispatches += 1
        if self.journal is not None:
            self.journal.dispatches_seen.append(key)
        if key in self._attempts or not self.wants(dispatch):
            return
        writer = JobWriter(self._store, self._subjects, self.agent, dispatch)
        await self._await_stopping_slot()
        if not self.free_slots:
            await self._refuse(dispatch, writer)
            return
        assert self._ctx is not None  # noqa: S101 -- pulling starts after the context exists
        attempt = self._attempts[key] = Attempt(self._ctx, dispatch, writer)
        attempt.task = asyncio.create_task(self._run(attempt), name=f"{self.agent}-{key}")

    async def _await_stopping_slot(self) -> None:
        """With no free slot but an attempt being canceled, wait (bounded) for it to end.

        The scheduler frees a slot when it times an attempt out or cancels it, and may place the
        next attempt here before this agent has stopped the old one; refusing that dispatch
        would burn one of the job's retries on a slot that frees in a moment.
        """
        deadline = time.monotonic() + self.settings.slot_wait_s
        while not self.free_slots and self._stopping.intersection(self._attempts):
            self._freed.clear()
            try:
                async with asyncio.timeout(deadline - time.monotonic()):
                    await self._freed.wait()
            except TimeoutError:
                return

    async def _refuse(self, dispatch: Dispatch, writer: JobWriter) -> None:
        """Fail a dispatch beyond the free slots as a resource error: it retries elsewhere."""
        key = (dispatch.job, dispatch.attempt)
        self.stats.refused += 1
        if self.journal is not None:
            self.journal.refused.append(key)
        why = f"no free slot on {self.agent} ({self.slots} slots)"
        refusal = Fail(
            agent=self.agent,
            attempt=dispatch.attempt,
            reason=FailureReason.RESOURCE_ERROR,
            message=why,
        )
        await writer.report(refusal, time.time())

    async def _run(self, attempt: Attempt) -> None:
        try:
            await attempt.run()
        finally:
            self._attempts.pop(attempt.key, None)
            self._stopping.discard(attempt.key)
            self._freed.set()

    def _on_control(self, control: Control) -> None:
        self.stats.controls += 1
        if self.journal is not None:
            self.journal.controls_seen.append((control.job, control.attempt, control.action))
        attempt = self._attempts.get((control.job, control.attempt))
        if attempt is not None:
            if control.action is ControlAction.CANCEL:
                self._stopping.add(attempt.key)
            attempt.controls.put_nowait(control)


def _accepted(work: WorkMessage, data: bytes) -> WorkMessage:
    """A work message within the limits every door applies; else ``MalformedMessage``.

    What arrives on the work subject is bounded like a command: its job id must be one the log
    can name, and a dispatch's strings must be within ``events.limits``, before anything is
    started. The spec's meaning was checked when the job was submitted; it is not judged again
    here, so an agent of another version still runs a job its scheduler accepted.
    """
    try:
        check_id(work.job)
        if isinstance(work, Dispatch):
            spec = work.spec
            check_spec_strings(spec.scenario, spec.input, spec.output, spec.approval_prompt)
            check_preset(spec.preset)
    except InvalidSpec as exc:
        raise MalformedMessage(str(exc), data) from exc
    return work
