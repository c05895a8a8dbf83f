"""The scheduler core's queries change nothing; its commands record what a caller did with them.

``plan``, ``tick``, ``is_lost`` and ``on_command`` answer from the core as it is: asked twice
they give the same decisions, and nothing a caller can observe has moved. ``planned`` and
``ticked`` record a pass; ``apply`` starts an agent's heartbeat window.
"""

from __future__ import annotations

from events.agent_events import AgentLost, AgentRegistered
from events.commands import CancelJob, Start
from events.job_events import JobAssigned, JobRejected, JobRetrying
from ffrtmp.scheduler.core import JobDecision, SchedulerCore, SchedulerSettings
from ffrtmp.scheduler.placement import Needs
from ffrtmp.scheduler.timers import TimerSettings
from tests.farm import CPU
from tests.unit.test_scheduler_core import Farm

LOST_S = 15.0
SETTINGS = SchedulerSettings(timers=TimerSettings(agent_lost_after_s=LOST_S))


def observed(core: SchedulerCore) -> tuple[object, ...]:
    """Everything a caller of the core can see: its snapshot and the state kept beside it."""
    return (
        core.snapshot(),
        core.dirty,
        dict(core.heard),
        dict(core.loads),
        {agent: dict(held) for agent, held in core.holding.items()},
        set(core.timed),
        set(core.unknown),
        _queued(core),
    )


def _queued(core: SchedulerCore) -> dict[Needs, list[str]]:
    return {needs: list(queue.in_order()) for needs, queue in core.queues.items()}


def _dirty(core: SchedulerCore) -> bool:
    """Whether a pass is called for (a call, so mypy does not narrow it between asserts)."""
    return core.dirty


def _jobs(decisions: object, kind: type) -> list[str]:
    assert isinstance(decisions, tuple)
    return [
        d.job
        for d in decisions
        if isinstance(d, JobDecision) and any(isinstance(e, kind) for e in d.events)
    ]


def test_plan_changes_nothing_and_gives_the_same_decisions_twice() -> None:
    """A pass that rejects a fresh job and stops at its limit leaves the core as it found it."""
    farm = Farm(SchedulerCore(SETTINGS))
    farm.register("c1", slots=2)
    farm.submit("g", scenario="1080p-h264-nvenc")  # no agent could ever run it
    farm.submit("j1")
    farm.submit("j2")
    before = observed(farm.core)
    first = farm.core.plan(farm.now, limit=1)
    second = farm.core.plan(farm.now, limit=1)
    assert first == second
    assert observed(farm.core) == before
    assert "g" in _jobs(first.decisions, JobRejected)
    assert _jobs(first.decisions, JobAssigned) == ["j1"]
    assert first.more  # one placed, room for another: the limit stopped it


def test_planned_records_the_fresh_jobs_as_checked_once() -> None:
    """After ``planned`` a fresh job is not checked again; recording the pass twice is once."""
    farm = Farm(SchedulerCore(SETTINGS))
    farm.register("c1", slots=1)
    farm.submit("j1")
    farm.plan()  # j1 takes the only slot: later passes place nothing
    farm.submit("g", scenario="1080p-h264-nvenc")
    plan = farm.core.plan(farm.now)
    assert _jobs(plan.decisions, JobRejected) == ["g"]
    assert _dirty(farm.core)
    farm.core.planned(plan)
    farm.core.planned(plan)
    assert not _dirty(farm.core)
    assert farm.core.plan(farm.now).decisions == ()


def test_a_change_after_a_pass_was_planned_still_calls_for_a_pass() -> None:
    """A job queued between ``plan`` and ``planned`` is not lost to the recording of the pass."""
    farm = Farm(SchedulerCore(SETTINGS))
    farm.register("c1", slots=2)
    farm.submit("j1")
    plan = farm.core.plan(farm.now)
    farm.submit("j2")
    farm.commit(plan.decisions)
    farm.core.planned(plan)
    assert farm.core.dirty
    assert _jobs(farm.core.plan(farm.now).decisions, JobAssigned) == ["j2"]


def test_a_pass_stopped_at_its_limit_calls_for_another() -> None:
    """``more`` keeps the core dirty after ``planned``, so the rest is placed next pass."""
    farm = Farm(SchedulerCore(SETTINGS))
    farm.register("c1", slots=2)
    farm.submit("j1")
    farm.submit("j2")
    plan = farm.core.plan(farm.now, limit=1)
    farm.commit(plan.decisions)
    farm.core.planned(plan)
    assert _dirty(farm.core)
    last = farm.core.plan(farm.now, limit=1)
    farm.commit(last.decisions)
    farm.core.planned(last)
    assert _jobs(last.decisions, JobAssigned) == ["j2"]
    assert not _dirty(farm.core)


def _lost_and_orphaned() -> tuple[Farm, str, str]:
    """a1 went silent holding one job; a2 restarted (registered again) holding the other."""
    farm = Farm(SchedulerCore(SETTINGS))
    farm.register("a1")
    farm.register("a2")
    farm.submit("j1")
    farm.submit("j2")
    held = {agent: job for job, agent in farm.assigned(farm.plan())}
    for agent, job in held.items():
        farm.report(job, Start(agent=agent, attempt=1))
    farm.now += LOST_S + 1
    farm.register("a2")
    farm.beat("a2")
    return farm, held["a1"], held["a2"]


def test_tick_changes_nothing_and_gives_the_same_decisions_twice() -> None:
    """A tick that finds a lost agent and an orphaned attempt leaves the core as it found it."""
    farm, silent, orphan = _lost_and_orphaned()
    before = observed(farm.core)
    first = farm.core.tick(farm.now)
    second = farm.core.tick(farm.now)
    assert first == second
    assert observed(farm.core) == before
    assert sorted(_jobs(first.decisions, JobRetrying)) == sorted([silent, orphan])
    assert first.orphans == {orphan}


def test_ticked_drops_only_the_orphans_the_tick_decided_on() -> None:
    """After ``ticked`` the orphan is not decided again; the lost agent's job still is."""
    farm, silent, orphan = _lost_and_orphaned()
    farm.core.ticked(farm.core.tick(farm.now))
    assert _jobs(farm.core.tick(farm.now).decisions, JobRetrying) == [silent]
    assert orphan in farm.core.holding["a2"]  # nothing was committed: it still holds it


def test_an_agents_window_starts_when_the_core_learns_of_it() -> None:
    """Never heard from after registering: lost one window after ``apply``, whatever the ticks."""
    core = SchedulerCore(SETTINGS)
    registered = AgentRegistered(agent="a1", at=0.0, cause="boot", capabilities=CPU, slots=1)
    core.apply(1, registered, 1000.0)
    assert core.tick(1000.0 + LOST_S - 1).decisions == ()
    (lost,) = core.tick(1000.0 + LOST_S + 1).decisions
    assert [e.last_seen for e in lost.events if isinstance(e, AgentLost)] == [1000.0]
    restored = SchedulerCore.restore(core.snapshot(), 5000.0, SETTINGS)
    assert restored.tick(5000.0 + LOST_S - 1).decisions == ()
    assert len(restored.tick(5000.0 + LOST_S + 1).decisions) == 1


def test_is_lost_changes_nothing_and_answers_the_same_twice() -> None:
    """A lost agent heard from again is lost until its return lands; asking moves nothing."""
    farm, _, _ = _lost_and_orphaned()
    farm.tick()
    farm.beat("a1")
    before = observed(farm.core)
    assert farm.core.is_lost("a1")
    assert farm.core.is_lost("a1")
    assert not farm.core.is_lost("a2")
    assert observed(farm.core) == before


def test_on_command_changes_nothing_and_decides_the_same_twice() -> None:
    """An operator's command is decided from the core as it is, without moving it."""
    farm = Farm(SchedulerCore(SETTINGS))
    farm.register("c1")
    farm.submit("j1")
    cancel = CancelJob(id="c-cancel", job="j1", at=farm.now)
    before = observed(farm.core)
    first = farm.core.on_command(cancel, farm.now)
    assert first == farm.core.on_command(cancel, farm.now)
    assert first.events
    assert observed(farm.core) == before
