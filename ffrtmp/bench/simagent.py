"""A simulated agent that speaks the real protocol, without FFmpeg.

Scheduler integration tests and ``ffrtmp bench schedule`` need agents by the dozen that behave
exactly as the wire says an agent does: it registers (an event), pulls dispatches and control
messages from its durable consumer on the work stream, writes each attempt's reports through
``agent.report.JobWriter`` (so it is fenced like a real agent when the job moves on), and
publishes heartbeats. Only the work is pretend: a ``Behaviour`` says how long an attempt takes
and how it ends. Counters (``executions``, ``dropped`` …) let a test prove nothing ran twice.

An attempt's work clock is the monotonic clock, stopped while paused; event times are
``time.time()``, the writer's clock, as everywhere at the edge. A dispatch beyond the free slots
is refused on the log (``Fail`` with ``resource_error``, which retries elsewhere), never dropped
silently; a message that does not decode is set aside on the dead-letter subject and terminated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext

from agent.report import JobWriter
from events.agent_events import AgentDeregistered, AgentRegistered, Capabilities
from events.base import Event
from events.codec import decode_work, encode
from events.commands import Complete, ControlDone, Fail, Progress, Start
from events.enums import ControlAction, FailureReason
from events.errors import FfrtmpError, MalformedMessage
from events.job import AgentReport
from events.job_events import JobResults
from events.store import Append, EventStore
from events.subjects import Subjects
from events.work import Control, Dispatch, Heartbeat, RunningJob

_log = logging.getLogger(__name__)

FETCH_S: Final = 1.0
"""How long one pull waits for work; a pull request left behind by a crash expires with it."""
ACK_WAIT_S: Final = 10.0
MAX_DELIVER: Final = 5

AttemptKey = tuple[str, int]  # (job, attempt)


class Outcome(StrEnum):
    """How a simulated attempt ends."""

    COMPLETE = "complete"
    FAIL = "fail"
    HANG = "hang"  # starts, then never reports again: holds its slot until canceled or stopped
    IGNORE = "ignore"  # never starts: as if the dispatch were lost


class Behaviour(msgspec.Struct, frozen=True, kw_only=True):
    """What the sim does with one dispatch."""

    outcome: Outcome = Outcome.COMPLETE
    run_s: float = 0.1  # seconds of unpaused work before the attempt ends
    milestones: tuple[float, ...] = (50.0,)  # percents reported on the way, as JobProgressed
    fail_reason: FailureReason = FailureReason.RUNTIME_ERROR
    fail_message: str = "simulated failure"


Plan = Callable[[Dispatch], Behaviour]
DEFAULT_BEHAVIOUR: Final = Behaviour()


def always(behaviour: Behaviour) -> Plan:
    """A plan that does the same with every dispatch."""
    return lambda _dispatch: behaviour


class _Clock:
    """Seconds of work done on one attempt: runs from creation, stops while paused."""

    def __init__(self) -> None:
        self._done = 0.0
        self._since: float | None = time.monotonic()

    @property
    def stopped(self) -> bool:
        return self._since is None

    def elapsed(self) -> float:
        running = 0.0 if self._since is None else time.monotonic() - self._since
        return self._done + running

    def stop(self) -> None:
        self._done, self._since = self.elapsed(), None

    def go(self) -> None:
        if self._since is None:
            self._since = time.monotonic()


@dataclass(eq=False)
class _Attempt:
    """One attempt this agent holds a slot for."""

    dispatch: Dispatch
    writer: JobWriter
    run_s: float
    controls: asyncio.Queue[Control] = field(default_factory=asyncio.Queue)
    clock: _Clock = field(default_factory=_Clock)
    task: asyncio.Task[None] | None = None

    @property
    def key(self) -> AttemptKey:
        return self.dispatch.job, self.dispatch.attempt

    def running(self) -> RunningJob:
        """Its live progress, for the heartbeat."""
        done = self.clock.elapsed() / self.run_s if self.run_s > 0 else 1.0
        percent = 0.0 if math.isinf(self.run_s) else min(100.0, 100.0 * done)
        job, attempt = self.key
        return RunningJob(job=job, attempt=attempt, percent=percent, paused=self.clock.stopped)


class SimAgent:
    """A pretend agent on the real wire: register, pull, report, heartbeat, honour controls."""

    def __init__(
        self,
        nc: NatsClient,
        store: EventStore,
        subjects: Subjects,
        agent: str,
        capabilities: Capabilities,
        slots: int,
        *,
        heartbeat_s: float = 5.0,
        behaviour: Behaviour | Plan = DEFAULT_BEHAVIOUR,
        max_deliver: int = MAX_DELIVER,
    ) -> None:
        """Describe the agent; nothing happens on the wire until ``start``."""
        self.agent = agent
        self.slots = slots
        self.capabilities = capabilities
        self._nc, self._store, self._subjects = nc, store, subjects
        self._js: JetStreamContext = nc.jetstream()
        self._heartbeat_s = heartbeat_s
        self._plan = always(behaviour) if isinstance(behaviour, Behaviour) else behaviour
        self._max_deliver = max_deliver
        self._attempts: dict[AttemptKey, _Attempt] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._sub: JetStreamContext.PullSubscription | None = None
        self._registration = ""
        self.executions: list[AttemptKey] = []  # attempts begun: their Start was stored
        self.dispatches_seen: list[AttemptKey] = []
        self.controls_seen: list[tuple[str, int, ControlAction]] = []
        self.dropped: list[AttemptKey] = []  # attempts given up: a report no longer applied
        self.refused: list[AttemptKey] = []  # dispatches beyond the free slots
        self.malformed = 0
        self.errors = 0
        self.heartbeats = 0

    @property
    def durable(self) -> str:
        """The agent's durable consumer on the work stream."""
        return f"agent-{self.agent}"

    @property
    def free_slots(self) -> int:
        """Slots not held by an attempt."""
        return max(0, self.slots - len(self._attempts))

    @property
    def running(self) -> list[AttemptKey]:
        """The attempts holding slots now."""
        return list(self._attempts)

    async def start(self) -> None:
        """Register, bind the durable consumer, and start heartbeats and the pull loop."""
        self._registration = uuid.uuid4().hex[:12]
        registered = AgentRegistered(
            agent=self.agent,
            at=time.time(),
            cause=f"registration:{self._registration}",
            capabilities=self.capabilities,
            slots=self.slots,
        )
        await self._append_agent_event(registered)
        config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, ack_wait=ACK_WAIT_S, max_deliver=self._max_deliver
        )
        self._sub = await self._js.pull_subscribe(
            self._subjects.work(self.agent),
            durable=self.durable,
            stream=self._subjects.work_stream,
            config=config,
        )
        self._tasks = [
            asyncio.create_task(self._beat(), name=f"{self.agent}-heartbeat"),
            asyncio.create_task(self._pull(self._sub), name=f"{self.agent}-pull"),
        ]

    async def stop(self, *, deregister: bool = True) -> None:
        """Stop everything; ``deregister=False`` is a crash: no event, no more heartbeats."""
        tasks = [*self._tasks, *(a.task for a in self._attempts.values() if a.task)]
        self._tasks = []
        for task in tasks:
            task.cancel()
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                _log.error("%s: a task had failed", self.agent, exc_info=result)
        if self._sub is not None:
            sub, self._sub = self._sub, None
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()
                await self._nc.flush()
        if deregister and self._registration:
            gone = AgentDeregistered(
                agent=self.agent,
                at=time.time(),
                cause=f"registration:{self._registration}",
                reason="stopped",
            )
            await self._append_agent_event(gone)
        self._registration = ""

    async def _append_agent_event(self, event: Event) -> None:
        await self._store.append(
            Append(
                subject=self._subjects.agent_event(self.agent),
                event=event,
                msg_id=f"{self.agent}:{type(event).__name__}:{self._registration}",
            )
        )

    # heartbeats

    async def _beat(self) -> None:
        while True:
            await self.heartbeat()
            await asyncio.sleep(self._heartbeat_s)

    async def heartbeat(self) -> None:
        """Publish the agent's state now (core NATS: the heartbeat stream keeps the last)."""
        beat = Heartbeat(
            agent=self.agent,
            at=time.time(),
            slots=self.slots,
            free_slots=self.free_slots,
            running=tuple(attempt.running() for attempt in self._attempts.values()),
        )
        try:
            await self._nc.publish(self._subjects.heartbeat(self.agent), encode(beat))
        except NatsError as exc:
            _log.warning("%s: heartbeat not sent: %s", self.agent, exc)
        else:
            self.heartbeats += 1

    # the work subject

    async def _pull(self, sub: JetStreamContext.PullSubscription) -> None:
        while True:
            try:
                msgs = await sub.fetch(max(1, self.free_slots), timeout=FETCH_S)
            except TimeoutError:
                continue
            except ConnectionClosedError:
                return
            except NatsError as exc:
                _log.warning("%s: pull failed: %s", self.agent, exc)
                await asyncio.sleep(FETCH_S)  # the connection is reconnecting: poll gently
                continue
            for msg in msgs:
                try:
                    await self._handle(msg)
                except NatsError as exc:  # an ack lost: the message comes back, and is fenced
                    _log.warning("%s: %s", self.agent, exc)

    async def _handle(self, msg: Msg) -> None:
        try:
            work = decode_work(msg.data)
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
            self.errors += 1
            _log.warning("%s: %s", self.agent, exc)

    async def _set_aside(self, msg: Msg, exc: MalformedMessage) -> None:
        """Count it, copy it to the dead-letter subject, and never see it again."""
        self.malformed += 1
        _log.warning("%s: %s; set aside", self.agent, exc.reason)
        await self._nc.publish(self._subjects.dead_letter(self.durable), msg.data)
        await msg.term()

    async def _on_dispatch(self, dispatch: Dispatch) -> None:
        key = (dispatch.job, dispatch.attempt)
        self.dispatches_seen.append(key)
        behaviour = self._plan(dispatch)
        if key in self._attempts or behaviour.outcome is Outcome.IGNORE:
            return
        writer = JobWriter(self._store, self._subjects, self.agent, dispatch)
        if not self.free_slots:
            self.refused.append(key)
            why = f"no free slot on {self.agent} ({self.slots} slots)"
            refusal = self._fail(dispatch.attempt, FailureReason.RESOURCE_ERROR, why)
            await writer.report(refusal, time.time())
            return
        run_s = math.inf if behaviour.outcome is Outcome.HANG else behaviour.run_s
        attempt = self._attempts[key] = _Attempt(dispatch, writer, run_s)
        attempt.task = asyncio.create_task(self._run(attempt, behaviour), name=f"{key}")

    def _on_control(self, control: Control) -> None:
        self.controls_seen.append((control.job, control.attempt, control.action))
        attempt = self._attempts.get((control.job, control.attempt))
        if attempt is not None:
            attempt.controls.put_nowait(control)

    # one attempt

    async def _run(self, attempt: _Attempt, behaviour: Behaviour) -> None:
        try:
            if await self._report(attempt, Start(agent=self.agent, attempt=attempt.key[1])):
                self.executions.append(attempt.key)
                attempt.clock = _Clock()  # the work begins once the start is on the log
                await self._work(attempt, behaviour)
        except FfrtmpError as exc:
            self.errors += 1
            _log.warning("%s: attempt %s abandoned: %s", self.agent, attempt.key, exc)
        finally:
            self._attempts.pop(attempt.key, None)

    async def _work(self, attempt: _Attempt, behaviour: Behaviour) -> None:
        number = attempt.key[1]
        for percent in sorted(p for p in behaviour.milestones if 0 < p < 100):
            if not await self._advance(attempt, attempt.run_s * percent / 100):
                return
            milestone = Progress(agent=self.agent, attempt=number, percent=percent)
            if not await self._report(attempt, milestone):
                return
        if not await self._advance(attempt, attempt.run_s):
            return
        if behaviour.outcome is Outcome.FAIL:
            fail = self._fail(number, behaviour.fail_reason, behaviour.fail_message)
            await self._report(attempt, fail)
            return
        results = JobResults(wall_s=attempt.clock.elapsed())
        await self._report(attempt, Complete(agent=self.agent, attempt=number, results=results))

    def _fail(self, attempt: int, reason: FailureReason, message: str) -> Fail:
        return Fail(agent=self.agent, attempt=attempt, reason=reason, message=message)

    async def _advance(self, attempt: _Attempt, until_s: float) -> bool:
        """Work until ``until_s`` seconds are done, obeying controls; False: the attempt ended."""
        while (left := until_s - attempt.clock.elapsed()) > 0:
            wait = None if attempt.clock.stopped or math.isinf(left) else left
            try:
                control = await asyncio.wait_for(attempt.controls.get(), wait)
            except TimeoutError:
                return True
            if not await self._obey(attempt, control):
                return False
        return True

    async def _obey(self, attempt: _Attempt, control: Control) -> bool:
        """Act on a control and report what happened; False: the attempt ended."""
        action, paused = control.action, attempt.clock.stopped
        done = ControlDone(agent=self.agent, action=action, attempt=attempt.dispatch.attempt)
        if action is ControlAction.CANCEL:
            await self._report(attempt, done, control.cause)
            return False
        if (action is ControlAction.PAUSE) == paused:
            return True  # already as asked: a repeated pause, or a resume while running
        if not await self._report(attempt, done, control.cause):
            return False
        if action is ControlAction.PAUSE:
            attempt.clock.stop()
        else:
            attempt.clock.go()
        return True

    async def _report(self, attempt: _Attempt, command: AgentReport, cause: str = "") -> bool:
        """Write a report; False when it no longer applies (the attempt is then dropped)."""
        if await attempt.writer.report(command, time.time(), cause):
            return True
        self.dropped.append(attempt.key)
        _log.info("%s: %s refused for %s: the job moved on", self.agent, command, attempt.key)
        return False
