"""One attempt on an agent, from its ``Start`` on the log to its last report.

The attempt writes every report through its ``JobWriter`` (fenced by the per-job concurrency
check), starts the engine only once ``Start`` is stored, and then follows the execution: it reads
progress every ``poll_s`` (the one reader: heartbeats show what it read), reports coarse
milestones, acts on controls in the order they came, and cancels the execution itself when the
job moved on, when the agent drains, or when its budget of unpaused work ran out by more than
``budget_grace_s``: the scheduler times attempts out first and tells the agent; the agent's own
watchdog is the backstop that frees the slot while no scheduler runs. What a ``Stopped``
ending reports depends on why it stopped: the ``Halt`` set before the cancel says so.

A report that meets a store outage (a restarting server, a cluster electing the stream's
leader) is sent again with a doubling pause, under the same dedup id, until the log answers or
the attempt's budget is spent (``report_outage_s`` at least): a finished encode is never given
up because the log was away for a moment; the log decides, as always, whether it still
applies. Only a progress milestone is skipped instead: it is not worth holding the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Final

import msgspec
from nats.js.object_store import ObjectStore

from agent.clock import WorkClock
from agent.engine import Done, Ending, Engine, Execution, Failed, LiveProgress, Stopped
from agent.logs import store_log
from agent.report import JobWriter
from agent.tally import AgentStats, AttemptKey, Journal
from events.commands import Complete, ControlDone, Fail, Progress, Start
from events.enums import ControlAction, FailureReason
from events.errors import FfrtmpError, InvalidSpec, StoreUnavailable
from events.job import AgentReport
from events.policy import NO_BUDGET, time_budget_s
from events.scenarios import scenario
from events.spec import is_live
from events.work import Control, Dispatch, RunningJob

_log = logging.getLogger(__name__)
_MAX_OUTAGE_PAUSE_S: Final = 1.0

MILESTONES: Final = (25.0, 50.0, 75.0)


class AttemptSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How an attempt is followed."""

    poll_s: float = 0.5  # how often progress, the budget and pending controls are looked at
    milestones: tuple[float, ...] = MILESTONES  # percents reported to the log on the way
    budget_grace_s: float = 10.0  # past its budget by this much, the agent cancels an attempt
    report_outage_s: float = 120.0  # a report meeting an outage is retried this long at least
    outage_pause_s: float = 0.2  # the first pause before sending it again (doubles, up to 1 s)


def backstop_budget_s(dispatch: Dispatch, media_s: float | None) -> float:
    """The dispatch's budget; without one, the default policy's for the media found, if any.

    A whole input is dispatched without a budget (its length is unknown until the engine opens
    it); once the engine knows it, the agent's backstop follows the rule the scheduler applies
    (with the default policy). An endless stream keeps none.
    """
    budget, spec = dispatch.budget_s, dispatch.spec
    if budget > 0 or media_s is None:
        return budget
    try:
        chosen = scenario(spec.scenario)
    except InvalidSpec:
        return NO_BUDGET
    return time_budget_s(chosen, media_s, spec.engine, spec.timeout_s, paced=is_live(spec))


class Halt(msgspec.Struct, frozen=True, kw_only=True):
    """Why the agent canceled an execution: what its ``Stopped`` ending reports, if anything."""

    report: Fail | ControlDone | None  # None: the job moved on, nothing applies any more
    cause: str = ""  # a cancel's control cause


@dataclass(frozen=True)
class Context:
    """What every attempt of one agent shares."""

    agent: str
    engine: Engine
    settings: AttemptSettings
    stats: AgentStats
    journal: Journal | None = None
    logs: ObjectStore | None = None


@dataclass(eq=False)
class Attempt:
    """One attempt this agent holds a slot for."""

    ctx: Context
    dispatch: Dispatch
    writer: JobWriter
    controls: asyncio.Queue[Control] = field(default_factory=asyncio.Queue)
    execution: Execution | None = None
    clock: WorkClock | None = None  # unpaused work, from the engine's start
    live: LiveProgress = field(default_factory=LiveProgress)
    reported: float = 0.0  # the highest milestone reported
    halted: Halt | None = None
    task: asyncio.Task[None] | None = None

    @property
    def key(self) -> AttemptKey:
        """``(job, attempt)``."""
        return self.dispatch.job, self.dispatch.attempt

    def running(self) -> RunningJob:
        """Its live progress as last read, for the heartbeat."""
        live, paused = self.live, self.clock is not None and self.clock.stopped
        job, attempt = self.key
        return RunningJob(
            job=job,
            attempt=attempt,
            percent=live.percent,
            fps=live.fps,
            speed=live.speed,
            bitrate_kbps=live.bitrate_kbps,
            paused=paused,
            frames=live.frames,
            out_time_s=live.out_time_s,
            media_s=live.media_s,
            checked_frames=live.checked_frames,
        )

    def budget_s(self) -> float:
        """The attempt's budget as the agent's watchdog counts it (``backstop_budget_s``)."""
        return backstop_budget_s(self.dispatch, self.live.media_s)

    def stopping(self) -> bool:
        """Whether the agent has decided to end the attempt."""
        return self.halted is not None

    async def halt(self, halt: Halt) -> None:
        """Cancel the execution (once it exists) and report ``halt`` as its end."""
        if self.halted is None:
            self.halted = halt
        if self.execution is not None:
            await self.execution.cancel()

    # the attempt's life

    async def run(self) -> None:
        """Start, follow, report the end; a crash (task cancel) takes the execution with it."""
        try:
            await self._run()
        except FfrtmpError as exc:
            self.ctx.stats.errors += 1
            _log.warning("%s: attempt %s abandoned: %s", self.ctx.agent, self.key, exc)
            if self.execution is not None:  # no execution outlives the attempt that owns it
                await self.execution.cancel()
        except asyncio.CancelledError:
            if self.execution is not None:  # shielded: a second cancel must not leave FFmpeg
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.execution.cancel())
            raise

    async def _run(self) -> None:
        number = self.dispatch.attempt
        if not await self._report(Start(agent=self.ctx.agent, attempt=number)):
            return
        self.ctx.stats.executions += 1
        if self.ctx.journal is not None:
            self.ctx.journal.executions.append(self.key)
        if self.stopping():  # drained before the engine started
            await self._end(Stopped())
            return
        started = await self.ctx.engine.start(self.dispatch)
        if isinstance(started, Failed):
            await self._end(started)
            return
        self.execution, self.clock = started, WorkClock()
        if self.stopping():  # drained while the engine started
            await started.cancel()
        else:
            await self._keep_log(started)  # the command line, visible while it runs
        ending = await self._follow(started)
        await self._keep_log(started)
        await self._end(ending)

    async def _follow(self, execution: Execution) -> Ending:
        """Watch the execution until it ends, obeying controls as they come."""
        ending = asyncio.ensure_future(execution.wait())
        try:
            while not ending.done():
                control = asyncio.ensure_future(self.controls.get())
                await asyncio.wait(
                    {ending, control},
                    timeout=self.ctx.settings.poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if control.done():
                    await self._obey(execution, control.result())
                else:
                    control.cancel()
                await self._watch(execution)
            return ending.result()
        finally:
            ending.cancel()

    async def _watch(self, execution: Execution) -> None:
        """Read progress; report a milestone passed; enforce the budget."""
        self.live = execution.progress()
        budget, grace = self.budget_s(), self.ctx.settings.budget_grace_s
        if self.clock is not None and 0 < budget < self.clock.elapsed() - grace and not self.halted:
            message = f"over its budget of {budget:g} s of work; canceled by the agent"
            fail = self._fail(FailureReason.TIMEOUT, message)
            await self.halt(Halt(report=fail))
            return
        # Each milestone passed, in order, even when one reading passed several (a fast encode
        # goes from 20 % to 55 % between two readings): the history reads the same every time.
        passed = [m for m in self.ctx.settings.milestones if self.reported < m <= self.live.percent]
        for percent in passed:
            if self.halted:
                return
            self.reported = percent
            milestone = Progress(agent=self.ctx.agent, attempt=self.key[1], percent=percent)
            try:
                await self._report(milestone)
            except StoreUnavailable as exc:
                _log.info("%s: milestone of %s skipped: %s", self.ctx.agent, self.key, exc)

    async def _obey(self, execution: Execution, control: Control) -> None:
        """Act on a control and report what actually happened."""
        action, clock = control.action, self.clock
        done = ControlDone(agent=self.ctx.agent, action=action, attempt=self.key[1])
        if action is ControlAction.CANCEL:
            await self.halt(Halt(report=done, cause=control.cause))
            return
        pausing = action is ControlAction.PAUSE
        if not (execution.pause() if pausing else execution.resume()):
            return  # already as asked: a repeated pause, or a resume while running
        if clock is not None:
            clock.stop() if pausing else clock.go()
        if not await self._report(done, control.cause) and self.writer.holds:
            # The log cannot say so (the job was not in a state to pause or resume): undo it.
            undone = execution.resume() if pausing else execution.pause()
            if undone and clock is not None:
                clock.go() if pausing else clock.stop()

    async def _end(self, ending: Ending) -> None:
        """Report how the attempt ended."""
        stats = self.ctx.stats
        match ending:
            case Done(results=results):
                number = self.key[1]
                complete = Complete(agent=self.ctx.agent, attempt=number, results=results)
                if await self._report(complete):
                    stats.completed += 1
            case Failed(reason=reason, message=message):
                if await self._report(self._fail(reason, message)):
                    stats.failed += 1
            case Stopped():
                await self._end_stopped()

    async def _end_stopped(self) -> None:
        halt = self.halted or Halt(
            report=self._fail(FailureReason.RUNTIME_ERROR, "the engine stopped by itself")
        )
        if halt.report is None:
            return
        if await self._report(halt.report, halt.cause):
            if isinstance(halt.report, ControlDone):
                self.ctx.stats.canceled += 1
            else:
                self.ctx.stats.failed += 1

    async def _keep_log(self, execution: Execution) -> None:
        """Store the log tail, if any, before the last report, so it is there once that is."""
        tail = execution.log_tail()
        if self.ctx.logs is None or not tail:
            return
        try:
            await store_log(self.ctx.logs, *self.key, tail)
        except FfrtmpError as exc:
            _log.warning("%s: log of %s not kept: %s", self.ctx.agent, self.key, exc)

    def _fail(self, reason: FailureReason, message: str) -> Fail:
        return Fail(agent=self.ctx.agent, attempt=self.key[1], reason=reason, message=message)

    async def _report(self, command: AgentReport, cause: str = "") -> bool:
        """Write a report; False when it does not apply. A job that moved on is given up."""
        if await self._through_outage(command, cause):
            return True
        if not self.writer.holds:
            await self._drop(command)
        return False

    async def _through_outage(self, command: AgentReport, cause: str) -> bool:
        """Write a report, sending it again while the store is out, until the deadline."""
        deadline = time.monotonic() + self._outage_allowance()
        pause = self.ctx.settings.outage_pause_s
        while True:
            try:
                return bool(await self.writer.report(command, time.time(), cause))
            except StoreUnavailable as exc:
                if isinstance(command, Progress) or time.monotonic() + pause > deadline:
                    raise
                self.ctx.stats.outage_retries += 1
                _log.info("%s: %s of %s waits %g s: %s", self.ctx.agent, type(command).__name__,
                          self.key, pause, exc)  # fmt: skip
            await asyncio.sleep(pause)  # a backoff between sends while the store is out
            pause = min(2 * pause, _MAX_OUTAGE_PAUSE_S)

    def _outage_allowance(self) -> float:
        """How long a report may wait for the store: what is left of the budget, or the floor."""
        settings, clock, budget = self.ctx.settings, self.clock, self.budget_s()
        left = 0.0 if clock is None or budget <= 0 else budget - clock.elapsed()
        return max(settings.report_outage_s, left + settings.budget_grace_s)

    async def _drop(self, command: AgentReport) -> None:
        """The job moved on: stop the execution, report nothing more."""
        self.ctx.stats.dropped += 1
        if self.ctx.journal is not None:
            self.ctx.journal.dropped.append(self.key)
        _log.info("%s: %s refused for %s: the job moved on", self.ctx.agent, command, self.key)
        await self.halt(Halt(report=None))
