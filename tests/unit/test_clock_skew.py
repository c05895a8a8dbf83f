"""Clock skew between agents and the scheduler: the fold works, timeouts stay sane.

An agent stamps its events with its own clock. The fold keeps those stamps (they are facts of
what the agent said), but the scheduler times a running attempt by its own clock, from when it
saw the attempt start and progress, so an agent an hour behind is not timed out at once and an
agent an hour ahead is not given an extra hour.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.agent_events import AgentRegistered
from events.base import Event
from events.commands import Assign, Complete, Progress, Start, SubmitJob
from events.enums import JobStatus
from events.job import decide, fold
from events.job_events import JobEvent, JobResults, JobTimedOut
from events.spec import JobSpec
from ffrtmp.scheduler.core import Decision, SchedulerCore, SchedulerSettings
from ffrtmp.scheduler.timers import TimerSettings
from tests.farm import CPU

NOW = 1.8e9
BUDGET_S = 100.0
STALL_S = 30.0


class Log:
    """One core fed a log, as the service feeds it; the scheduler's clock is ``now``."""

    def __init__(self) -> None:
        timers = TimerSettings(stalled_after_s=STALL_S, agent_lost_after_s=1e9)
        self.core = SchedulerCore(SchedulerSettings(timers=timers))
        self.events: list[Event] = []
        self.now = NOW

    def append(self, *events: Event) -> None:
        for event in events:
            self.events.append(event)
            self.core.apply(len(self.events), event, self.now)
            self.core.advance(len(self.events))

    def commit(self, decisions: Sequence[Decision]) -> list[Event]:
        landed = [e for d in decisions for e in d.events]
        self.append(*landed)
        return landed

    def report(self, command: Start | Progress | Complete, agent_clock: float) -> None:
        """The agent decides its report with its own clock, as ``JobWriter`` does."""
        self.append(*decide(self.core.jobs["j"], command, agent_clock))

    def timeouts(self) -> list[JobTimedOut]:
        tick = self.core.tick(self.now)
        self.core.ticked(tick)
        return [e for e in self.commit(tick.decisions) if isinstance(e, JobTimedOut)]


def _running(skew_s: float) -> Log:
    log = Log()
    caps = AgentRegistered(agent="a1", at=NOW + skew_s, capabilities=CPU, slots=1)
    log.append(caps)
    spec = JobSpec(scenario="720p-h264", timeout_s=BUDGET_S)
    log.commit([log.core.on_command(SubmitJob(id="s", job="j", at=NOW, spec=spec), NOW)])
    plan = log.core.plan(NOW)
    log.core.planned(plan)
    log.commit(plan.decisions)
    log.report(Start(agent="a1", attempt=1), NOW + skew_s)
    assert log.core.jobs["j"].status is JobStatus.RUNNING
    return log


@pytest.mark.parametrize("skew_s", [-3600.0, -120.0, 0.0, 120.0, 3600.0])
def test_a_skewed_agent_is_timed_out_by_the_schedulers_clock(skew_s: float) -> None:
    """No timeout while the attempt progresses within its budget; one once it stalls or overruns."""
    log = _running(skew_s)
    for _ in range(3):  # 60 s of regular progress: neither stalled nor over budget
        log.now += 20.0
        log.report(Progress(agent="a1", attempt=1, percent=10.0), log.now + skew_s)
        assert log.timeouts() == []
    log.now += STALL_S + 1  # silent past the stall window
    (stalled,) = log.timeouts()
    assert stalled.kind == "stalled"


@pytest.mark.parametrize("skew_s", [-3600.0, 3600.0])
def test_a_skewed_agent_over_budget_is_timed_out_on_time(skew_s: float) -> None:
    """The budget counts from when the scheduler saw the start, not from the agent's stamp."""
    log = _running(skew_s)
    elapsed = 0.0
    while elapsed < BUDGET_S - 10:
        log.now += 10.0
        elapsed += 10.0
        log.report(Progress(agent="a1", attempt=1, percent=elapsed), log.now + skew_s)
        assert log.timeouts() == []
    log.now += 15.0
    log.report(Progress(agent="a1", attempt=1, percent=99.0), log.now + skew_s)
    (over,) = log.timeouts()
    assert over.kind == "budget"


@settings(max_examples=50, deadline=None)
@given(skews=st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=3, max_size=3))
def test_the_fold_takes_any_stamps(skews: list[float]) -> None:
    """Events stamped by clocks far apart, even going backwards, still fold to completion."""
    submit = SubmitJob(id="s", job="j", at=NOW, spec=JobSpec(scenario="720p-h264"))
    events: list[JobEvent] = decide(fold("j", []), submit, NOW)
    commands: list[Assign | Start | Complete] = [
        Assign(agent="a1", budget_s=BUDGET_S),
        Start(agent="a1", attempt=1),
        Complete(agent="a1", attempt=1, results=JobResults(wall_s=1.0)),
    ]
    for command, skew in zip(commands, skews, strict=True):
        events += decide(fold("j", events), command, NOW + skew)
    assert fold("j", events).status is JobStatus.COMPLETED
