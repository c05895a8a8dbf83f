"""A scripted engine: attempts that follow a ``Behaviour`` instead of running FFmpeg.

Scheduler tests (their ``SimAgent``) and ``ffrtmp bench e2e`` need the agent service exactly as
a farm runs it, with only the work pretend. A ``Behaviour`` says how long an attempt works
(seconds of unpaused work), where its progress steps and how it ends. Progress moves in steps,
one milestone per reading, and the work waits at each milestone until someone has read it, so
the service sees every milestone however fast the attempt is or however late the service looks.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Final

import msgspec

from agent.clock import WorkClock
from agent.engine import Done, Ending, Failed, LiveProgress, Stopped
from events.enums import FailureReason
from events.job_events import JobResults
from events.work import Dispatch


class Outcome(StrEnum):
    """How a scripted attempt ends."""

    COMPLETE = "complete"
    FAIL = "fail"
    HANG = "hang"  # starts, then never ends by itself: holds its slot until canceled or stopped
    IGNORE = "ignore"  # the agent never starts it: as if the dispatch were lost


class Behaviour(msgspec.Struct, frozen=True, kw_only=True):
    """What the scripted engine does with one dispatch."""

    outcome: Outcome = Outcome.COMPLETE
    run_s: float = 0.1  # seconds of unpaused work before the attempt ends
    milestones: tuple[float, ...] = (50.0,)  # percents the progress steps through on the way
    fail_reason: FailureReason = FailureReason.RUNTIME_ERROR
    fail_message: str = "simulated failure"
    log: bytes = b""  # what the attempt leaves as its log tail


Plan = Callable[[Dispatch], Behaviour]
DEFAULT_BEHAVIOUR: Final = Behaviour()


def always(behaviour: Behaviour) -> Plan:
    """A plan that does the same with every dispatch."""
    return lambda _dispatch: behaviour


class ScriptedExecution:
    """One scripted attempt: a work clock, milestone gates and the behaviour's ending."""

    def __init__(self, dispatch: Dispatch, behaviour: Behaviour) -> None:
        """Begin working now."""
        self.dispatch = dispatch
        self.behaviour = behaviour
        self._run_s = math.inf if behaviour.outcome is Outcome.HANG else behaviour.run_s
        self._gates = sorted(p for p in behaviour.milestones if 0 < p < 100)
        self._percent = 0.0
        self._clock = WorkClock()
        self._changed = asyncio.Event()
        self._stopped = False
        self._finish = False

    @property
    def paused(self) -> bool:
        """Whether the attempt is suspended."""
        return self._clock.stopped

    def progress(self) -> LiveProgress:
        """The last milestone passed; reading a milestone lets the work go on past it."""
        if self._gates and self._clock.elapsed() >= self._at(self._gates[0]):
            self._percent = self._gates.pop(0)
            self._changed.set()
        return LiveProgress(percent=self._percent)

    def pause(self) -> bool:
        """Hold the work clock; False when already held or ended."""
        if self._clock.stopped or self._stopped:
            return False
        self._clock.stop()
        self._changed.set()
        return True

    def resume(self) -> bool:
        """Run the work clock again; False when it was running or the attempt ended."""
        if not self._clock.stopped or self._stopped:
            return False
        self._clock.go()
        self._changed.set()
        return True

    async def cancel(self) -> None:
        """End the attempt at once: ``wait`` returns ``Stopped``."""
        self._stopped = True
        self._changed.set()

    def finish(self) -> None:
        """End the attempt now as its behaviour ends (a test's or a bench's release)."""
        self._finish = True
        self._gates.clear()
        self._changed.set()

    async def wait(self) -> Ending:
        """Work until the behaviour's end, a cancel, or ``finish``."""
        while True:
            if self._stopped:
                return Stopped()
            if self._finish or (not self._gates and self._clock.elapsed() >= self._run_s):
                return self._ending()
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout()):
                    await self._changed.wait()

    def log_tail(self) -> bytes:
        """The behaviour's log."""
        return self.behaviour.log

    def _at(self, percent: float) -> float:
        """Work seconds at which ``percent`` is reached."""
        return self._run_s * percent / 100

    def _timeout(self) -> float | None:
        """How long nothing can change by itself; None: until a reading or a control."""
        if self._clock.stopped or math.isinf(self._run_s):
            return None
        target = self._at(self._gates[0]) if self._gates else self._run_s
        left = target - self._clock.elapsed()
        return left if left > 0 else None  # at a gate: wait for the reading

    def _ending(self) -> Ending:
        if self.behaviour.outcome is Outcome.FAIL:
            return Failed(reason=self.behaviour.fail_reason, message=self.behaviour.fail_message)
        return Done(results=JobResults(wall_s=self._clock.elapsed(), frames=0))


class ScriptedEngine:
    """Starts scripted attempts by a plan; keeps each execution for tests to steer."""

    def __init__(self, plan: Behaviour | Plan = DEFAULT_BEHAVIOUR) -> None:
        """Use ``plan`` (or one behaviour for every dispatch)."""
        self.plan = always(plan) if isinstance(plan, Behaviour) else plan
        self.executions: dict[tuple[str, int], ScriptedExecution] = {}

    async def start(self, dispatch: Dispatch) -> ScriptedExecution | Failed:
        """Begin the attempt as the plan says."""
        execution = ScriptedExecution(dispatch, self.plan(dispatch))
        self.executions[dispatch.job, dispatch.attempt] = execution
        return execution
