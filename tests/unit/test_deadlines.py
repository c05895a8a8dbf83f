"""When a job's timer may fire, and the index that saves each tick from walking every job."""

from __future__ import annotations

import heapq
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from events.commands import Fail, PauseJob, Progress, ResumeJob, Start
from events.enums import FailureReason, JobStatus
from events.job import JobState, decide
from events.work import Heartbeat, RunningJob
from ffrtmp.scheduler.core import JobDecision, SchedulerCore
from ffrtmp.scheduler.deadlines import Deadlines
from ffrtmp.scheduler.timers import TimerSettings, due_at, job_timers
from tests.unit.test_scheduler_core import Farm

S = JobStatus
SETTINGS = TimerSettings()
stamp = st.floats(0.0, 10_000.0, allow_nan=False)

state = st.builds(
    JobState,
    job=st.just("j1"),
    status=st.sampled_from(list(S)),
    agent=st.just("a1"),
    attempt=st.integers(1, 5),
    budget_s=st.one_of(st.just(0.0), st.floats(0.5, 5_000.0)),
    assigned_at=stamp,
    started_at=stamp,
    last_progress_at=stamp,
    retry_at=st.one_of(st.none(), stamp),
)


@settings(max_examples=500, deadline=None)
@given(state, st.floats(0.0, 30_000.0, allow_nan=False))
def test_no_timer_fires_before_its_due_time(job: JobState, now: float) -> None:
    """Before ``due_at`` nothing fires; a timer that fires is due at or before now."""
    due = due_at(job, SETTINGS)
    fired = job_timers(job, now, SETTINGS)
    if due is None or now < due:
        assert fired is None
    if fired is not None:
        assert due is not None
        assert due <= now


@settings(max_examples=300, deadline=None)
@given(state)
def test_a_timer_due_fires_just_after(job: JobState) -> None:
    """Just past ``due_at`` the timer fires: the time is not merely early, it is the time."""
    due = due_at(job, SETTINGS)
    if due is not None:
        assert job_timers(job, due + 0.01, SETTINGS) is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcdefgh"), stamp), max_size=60), stamp)
def test_due_is_every_job_with_an_entry_by_now_and_changes_nothing(
    entries: list[tuple[str, float]], now: float
) -> None:
    """``due`` is a scan of all entries, earliest first, each job once; ``take`` removes them."""
    deadlines = Deadlines()
    for job, at in entries:
        deadlines.add(job, at)
    expected = list(
        dict.fromkeys(job for at, job in sorted((a, j) for j, a in entries) if at <= now)
    )
    assert deadlines.due(now) == expected
    assert deadlines.due(now) == expected  # a query: asking twice gives the same
    assert deadlines.take(now) == expected
    assert deadlines.due(now) == []
    assert len(deadlines) == sum(1 for _, at in entries if at > now)


def test_entries_of_jobs_no_longer_timed_are_dropped_when_they_pile_up() -> None:
    """Stale entries are bounded by the timed jobs, not by the history of the farm."""
    deadlines = Deadlines()
    for index in range(5_000):
        deadlines.add(f"gone-{index}", 1e9 + index)
    deadlines.add("live", 1e9)
    deadlines.keep_only({"live"})
    assert len(deadlines) == 1
    assert deadlines.due(2e9) == ["live"]


def test_walk_visits_only_the_due_part_of_a_large_heap() -> None:
    """The walk stops at entries later than now: its cost follows the due, not the held."""
    deadlines = Deadlines()
    for index in range(10_000):
        deadlines.add(f"j{index}", 100.0 + index)
    assert deadlines.due(102.0) == ["j0", "j1", "j2"]
    assert heapq.nsmallest(1, deadlines._heap) == [(100.0, "j0")]


# --- the core looks only at the jobs filed as due, and misses none ---------------------------

JOBS = ("j1", "j2", "j3", "j4")
step = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(JOBS), st.integers(0, 3)),
    st.tuples(st.just("plan"), st.just(""), st.just(0)),
    st.tuples(st.just("start"), st.sampled_from(JOBS), st.integers(-30, 30)),
    st.tuples(st.just("progress"), st.sampled_from(JOBS), st.integers(-30, 30)),
    st.tuples(st.just("fail"), st.sampled_from(JOBS), st.just(0)),
    st.tuples(st.just("beat"), st.sampled_from(JOBS), st.integers(0, 3)),
    st.tuples(st.just("pause"), st.sampled_from(JOBS), st.just(0)),
    st.tuples(st.just("resume"), st.sampled_from(JOBS), st.just(0)),
    st.tuples(st.just("wait"), st.just(""), st.integers(1, 90)),
    st.tuples(st.just("tick"), st.just(""), st.booleans()),
)


def brute_force_due(core: SchedulerCore, now: float) -> set[str]:
    """Every timed job whose timer fires now, found by looking at each one (the old way)."""
    return {
        job
        for job in core.timed
        if job_timers(core._timed_by_us(core.jobs[job]), now, core.settings.timers) is not None
    }


class SkewedFarm(Farm):
    """The core farm, with agents whose reports carry their own clock."""

    def report_at(self, job: str, command: Any, at: float) -> None:
        state = self.core.jobs[job]
        events = decide(state, command, at, f"{job}:{state.attempt}:{at}")
        decision = JobDecision(
            job=job,
            events=tuple(events),
            expected=self.core.seqs[job],
            msg_ids=("x",) * len(events),
        )
        self.commit([decision])


def _act(farm: SkewedFarm, name: str, job: str, value: int, serial: int) -> None:  # noqa: C901 -- one case per kind of step
    state = farm.core.jobs.get(job)
    skewed = farm.now + value  # the agent's clock may be ahead or behind
    match name:
        case "submit":
            spec = {"max_retries": 2, "duration_s": 20.0 * value} if value else {"max_retries": 2}
            farm.submit(job, **spec)
        case "plan":
            farm.plan()
        case "start" if state is not None and state.agent:
            farm.report_at(job, Start(agent=state.agent, attempt=state.attempt), skewed)
        case "progress" if state is not None and state.agent:
            progress = Progress(agent=state.agent, attempt=state.attempt, percent=50.0)
            farm.report_at(job, progress, skewed)
        case "fail" if state is not None and state.agent:
            reason = FailureReason.RUNTIME_ERROR
            farm.report_at(
                job, Fail(agent=state.agent, attempt=state.attempt, reason=reason), skewed
            )
        case "beat" if state is not None and state.agent:
            running = RunningJob(
                job=job, attempt=state.attempt, frames=serial, media_s=30.0 * value or None
            )
            beat = Heartbeat(
                agent=state.agent, at=farm.now, slots=2, free_slots=1, running=(running,)
            )
            farm.core.heard_from(beat, farm.now)
        case "pause":
            farm.operator(PauseJob(id=f"c{serial}", job=job, at=farm.now))
        case "resume":
            farm.operator(ResumeJob(id=f"c{serial}", job=job, at=farm.now))
        case "wait":
            farm.now += value
        case "tick" if value:
            farm.tick()
        case "tick":  # a tick whose decisions never landed (an outage): looked at again
            farm.core.ticked(farm.core.tick(farm.now))
        case _:
            pass


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=70))
def test_the_core_finds_every_due_timer_and_only_those(steps: list[tuple[str, str, int]]) -> None:
    """After any steps, the timers the core finds due are exactly those a full walk finds."""
    farm = SkewedFarm()
    farm.register("a1", slots=2)
    farm.register("a2", slots=2)
    for serial, (name, job, value) in enumerate(steps):
        _act(farm, name, job, value, serial)
        found = {job for job, _ in farm.core._due(farm.now)}
        assert found == brute_force_due(farm.core, farm.now)
