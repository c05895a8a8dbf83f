"""Liveness from real progress: heartbeats that show the output advancing keep an attempt alive.

The agent writes milestones to the log only at 25/50/75 %, so a live stream or a slow encode
can go far longer than the stall window between two of them. Its heartbeats carry the frames
and media time produced so far; the scheduler counts an attempt as progressing whenever they
grow, and times it out (an event) once they stop growing for the stall window.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from events.commands import Progress, Start
from events.enums import JobStatus, TimeoutKind
from events.job_events import JobTimedOut
from events.work import Heartbeat, RunningJob
from ffrtmp.cli import app
from ffrtmp.scheduler.core import SchedulerCore, SchedulerSettings
from ffrtmp.scheduler.timers import TimerSettings, timer_problem
from tests.unit.test_scheduler_core import Farm

STALL_S = 60.0
BEAT_S = 5.0
SETTINGS = SchedulerSettings(
    timers=TimerSettings(heartbeat_s=BEAT_S, agent_lost_after_s=1e9, stalled_after_s=STALL_S)
)


def running(job: str = "live", **spec: object) -> Farm:
    """A farm with ``job`` running on agent a1 (attempt 1), no budget to speak of."""
    farm = Farm(SchedulerCore(SETTINGS))
    farm.register("a1")
    spec.setdefault("timeout_s", 7 * 24 * 3600.0)
    farm.submit(job, **spec)
    farm.plan()
    farm.report(job, Start(agent="a1", attempt=1))
    assert farm.core.jobs[job].status is JobStatus.RUNNING
    return farm


def beat(
    farm: Farm, frames: int, *, agent: str = "a1", attempt: int = 1, paused: bool = False
) -> None:
    """A heartbeat from ``agent`` showing the attempt at ``frames`` (30 fps media time)."""
    progress = RunningJob(
        job="live", attempt=attempt, frames=frames, out_time_s=frames / 30, paused=paused
    )
    heartbeat = Heartbeat(agent=agent, at=farm.now, slots=1, free_slots=0, running=(progress,))
    farm.core.heard_from(heartbeat, farm.now)


def timeouts(farm: Farm) -> list[JobTimedOut]:
    """What the clock decides now, the timeouts of it."""
    return [e for e in farm.tick() if isinstance(e, JobTimedOut)]


def test_a_stream_advancing_in_heartbeats_runs_for_hours_without_a_milestone() -> None:
    """Two hours of heartbeats with growing frames and no JobProgressed: never timed out."""
    farm = running()
    frames = 0
    for _ in range(int(2 * 3600 / BEAT_S)):
        farm.now += BEAT_S
        frames += int(30 * BEAT_S)
        beat(farm, frames)
        assert timeouts(farm) == []
    assert farm.core.jobs["live"].status is JobStatus.RUNNING


def test_output_that_stops_is_timed_out_within_the_stall_window() -> None:
    """Heartbeats keep coming but the frames stop: stalled once the window has passed."""
    farm = running()
    farm.now += BEAT_S
    beat(farm, 150)
    stopped_at = farm.now
    while not (found := timeouts(farm)):
        farm.now += 1.0
        beat(farm, 150)  # the agent is alive; its FFmpeg is not
        assert farm.now - stopped_at <= STALL_S + 1.0
    (timed_out,) = found
    assert timed_out.kind is TimeoutKind.STALLED
    assert timed_out.at - stopped_at > STALL_S


def test_only_the_holders_current_unpaused_attempt_counts() -> None:
    """Another agent, an older attempt or a paused report showing frames keeps nothing alive."""
    farm = running()
    for frames in range(1, int(STALL_S / BEAT_S) + 2):
        farm.now += BEAT_S
        beat(farm, frames * 150, agent="a2")
        beat(farm, frames * 150, attempt=0)
        beat(farm, frames * 150, paused=True)
    (timed_out,) = timeouts(farm)
    assert timed_out.kind is TimeoutKind.STALLED


def test_media_time_alone_counts_as_advancing() -> None:
    """An engine that reports media time but no frame count still shows life."""
    farm = running()
    for second in range(1, 40):
        farm.now += BEAT_S
        progress = RunningJob(job="live", attempt=1, out_time_s=float(second))
        heartbeat = Heartbeat(agent="a1", at=farm.now, slots=1, free_slots=0, running=(progress,))
        farm.core.heard_from(heartbeat, farm.now)
        assert timeouts(farm) == []


def test_a_restored_scheduler_gives_a_running_stream_a_full_window() -> None:
    """After a restart the last milestone may be hours old: the stream still gets a window."""
    farm = running()
    farm.report("live", Progress(agent="a1", attempt=1, percent=1.0))
    farm.now += 3 * 3600  # hours of heartbeats the old scheduler saw, then it died
    core = SchedulerCore.restore(farm.core.snapshot(), farm.now, SETTINGS)
    core.grace(farm.now)
    farm.core = core
    assert timeouts(farm) == []
    farm.now += STALL_S / 2
    beat(farm, 100_000)
    farm.now += STALL_S / 2 + 1
    assert timeouts(farm) == []  # the heartbeat showed it advancing
    farm.now += STALL_S
    beat(farm, 100_000)  # no further
    (timed_out,) = timeouts(farm)
    assert timed_out.kind is TimeoutKind.STALLED


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(min_value=0.5, max_value=2 * STALL_S), st.booleans()),
        min_size=1,
        max_size=40,
    )
)
def test_timed_out_exactly_when_the_output_did_not_advance_for_the_window(
    beats: list[tuple[float, bool]],
) -> None:
    """Against a model: stalled at the first tick more than the window after the last advance."""
    farm = running()
    frames, advanced_at = 0, farm.now
    for gap, advancing in beats:
        farm.now += gap
        found = timeouts(farm)  # the clock ran before this heartbeat came
        if farm.now - advanced_at > STALL_S:
            assert [e.kind for e in found] == [TimeoutKind.STALLED]
            return
        assert found == []
        frames += 30 if advancing else 0
        beat(farm, frames)
        if advancing:
            advanced_at = farm.now


def test_a_quality_pass_comparing_frames_is_progress() -> None:
    """After the encode, the frames stop; the quality pass's compared frames keep it alive."""
    farm = running()
    beat(farm, 300)  # the encode is done: 300 frames, and they will not grow
    for checked in range(1, 40):
        farm.now += BEAT_S
        progress = RunningJob(
            job="live", attempt=1, frames=300, out_time_s=10.0, checked_frames=checked * 20
        )
        heartbeat = Heartbeat(agent="a1", at=farm.now, slots=1, free_slots=0, running=(progress,))
        farm.core.heard_from(heartbeat, farm.now)
        assert timeouts(farm) == []


def test_a_stall_window_under_two_heartbeats_is_refused_in_one_line() -> None:
    """``scheduler run`` with a window that would time out advancing work: exit 1, one line."""
    shown = CliRunner().invoke(
        app, ["scheduler", "run", "--heartbeat-s", "5", "--stalled-after-s", "8"]
    )
    assert shown.exit_code == 1
    assert "--stalled-after-s 8 is under two heartbeats (10 s)" in shown.output
    assert timer_problem(TimerSettings(heartbeat_s=5.0, stalled_after_s=10.0)) is None


def test_an_agent_of_the_previous_version_is_judged_on_its_live_percent() -> None:
    """Its heartbeats carry no frames or media time, only a live percent: growth still counts."""
    farm = running()
    for step in range(1, 40):
        farm.now += BEAT_S
        progress = RunningJob(job="live", attempt=1, percent=step * 0.5)
        heartbeat = Heartbeat(agent="a1", at=farm.now, slots=1, free_slots=0, running=(progress,))
        farm.core.heard_from(heartbeat, farm.now)
        assert timeouts(farm) == []
