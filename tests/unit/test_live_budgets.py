"""Live jobs and whole inputs: durations the spec may leave out, and the budgets that follow.

A paced (live) job cannot run faster than 1.0x, so its budget is never under its duration plus
slack. A live stream without a duration, or a whole input whose length only the agent learns,
gets no budget at assignment: the stall window protects it, and once the agent reports the media
it found, the scheduler budgets the attempt from that.
"""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.attempt import backstop_budget_s
from agent.command import Machine, build
from agent.inputheader import InputHeader, input_header, media_s
from events.commands import Start
from events.enums import JobStatus, TimeoutKind
from events.job import JobState
from events.job_events import JobAssigned, JobTimedOut
from events.policy import DEFAULT_BUDGET, NO_BUDGET, time_budget_s
from events.scenarios import SCENARIOS, scenario
from events.spec import JobSpec, duration_words, planned_duration_s, validate
from events.work import Dispatch, Heartbeat, RunningJob
from ffrtmp.scheduler.core import SchedulerCore, SchedulerSettings
from ffrtmp.scheduler.timers import TimerSettings
from tests.farm import CPU
from tests.unit.test_scheduler_core import Farm

STALL_S = 60.0
RTMP = "rtmp://ingest.example/live/key"


def test_a_200_s_480p_live_stream_gets_at_least_200_s_plus_slack() -> None:
    """The issue's case: 188 s before (less than the stream itself), 250 s now."""
    chosen = scenario("480p-h264")
    assert time_budget_s(chosen, 200.0) == pytest.approx(188.0, abs=0.5)  # an unpaced encode
    assert time_budget_s(chosen, 200.0, paced=True) == pytest.approx(30.0 + 200.0 * 1.1)


@given(
    st.sampled_from(sorted(SCENARIOS)),
    st.floats(min_value=0.1, max_value=24 * 3600.0),
)
def test_a_paced_budget_is_never_under_the_duration_at_real_time(
    name: str, duration: float
) -> None:
    """Any scenario, any duration: the paced budget covers 1.0x plus startup and slack."""
    budget = time_budget_s(scenario(name), duration, paced=True)
    assert budget >= DEFAULT_BUDGET.startup_s + duration * (1 + DEFAULT_BUDGET.pace_slack)
    assert budget >= time_budget_s(scenario(name), duration)


def test_no_duration_means_no_budget_unless_the_spec_sets_one() -> None:
    """Unknown or unbounded media: no budget; an operator's timeout_s still applies."""
    chosen = scenario("1080p-h264")
    assert time_budget_s(chosen, None, paced=True) == NO_BUDGET
    assert time_budget_s(chosen, None, override_s=900.0) == 900.0


@pytest.mark.parametrize(
    ("input_", "output", "planned", "words"),
    [
        ("testsrc2", "none", 10.0, "10 s"),
        ("testsrc2", "/out/a.mp4", 10.0, "10 s"),
        ("testsrc2", RTMP, None, "until canceled"),
        ("/media/in.mp4", "/out/a.mp4", None, "the whole input"),
        ("https://cdn.example/in.mp4", RTMP, None, "the whole input"),
        ("srt://cam.example:9000", "/out/a.ts", None, "the whole input"),
    ],
)
def test_what_a_spec_without_a_duration_encodes(
    input_: str, output: str, planned: float | None, words: str
) -> None:
    """validate() writes the pattern default into the log; the rest stay whole or endless."""
    spec = validate(JobSpec(scenario="720p-h264", input=input_, output=output))
    assert spec.duration_s == planned == planned_duration_s(spec)
    assert duration_words(spec) == words


def test_the_command_cuts_only_when_there_is_a_duration() -> None:
    """No ``-t`` for a whole file or an endless live stream; ``-t`` for a pattern's 10 s."""

    def argv(**spec: Any) -> tuple[str, ...]:
        chosen = scenario("720p-h264")
        return build("ffmpeg", JobSpec(scenario="720p-h264", **spec), chosen, Machine()).argv

    assert "-t" not in argv(input="/media/in.mp4", output="/out/a.mp4")
    assert "-t" not in argv(input="testsrc2", output=RTMP)
    whole = argv(input="testsrc2", output="none")
    assert whole[whole.index("-t") + 1] == "10"
    cut = argv(input="/media/in.mp4", output="/out/a.mp4", duration_s=30.0)
    assert cut[cut.index("-t") + 1] == "30"


HEADER = """\
ffmpeg stats and -progress period set to 0.5.
Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/media/in.mp4':
  Metadata:
    major_brand     : isom
  Duration: 01:02:03.50, start: 0.000000, bitrate: 205 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 160x90, 30 fps
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp
Stream mapping:
  Stream #0:0 -> #0:0 (h264 (native) -> h264 (libx264))
Output #0, mp4, to '/out/a.mp4':
  Duration: 00:00:01.00
"""
LIVE_HEADER = """\
Input #0, lavfi, from 'testsrc2=size=160x90:rate=30':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: wrapped_avframe, rgb24, 160x90 [SAR 1:1 DAR 16:9], 30 fps
Output #0, flv, to 'rtmp://x/live/y':
"""


def test_the_input_header_gives_duration_and_streams() -> None:
    """FFmpeg's own header of input 0: its duration and stream kinds, never the output's."""
    assert input_header(HEADER) == InputHeader(duration_s=3723.5, video=1, audio=1)
    assert input_header(LIVE_HEADER) == InputHeader(duration_s=None, video=1, audio=0)


@pytest.mark.parametrize(
    "partial",
    ["", "Input #0, mov,mp4 from 'x':\n  Duration: 00:00:09.00", "[in] No such file or directory"],
)
def test_an_unfinished_header_is_not_read(partial: str) -> None:
    """Until FFmpeg moves on to its outputs the header may be half-written: nothing yet."""
    assert input_header(partial) is None


@given(
    st.one_of(st.none(), st.floats(min_value=0.1, max_value=1e5)),
    st.one_of(st.none(), st.floats(min_value=0.1, max_value=1e5)),
)
def test_the_media_encoded_is_the_shorter_of_spec_and_input(
    planned: float | None, probed: float | None
) -> None:
    """The spec's duration cut short by a shorter input; either alone when the other is unknown."""
    found = media_s(planned, InputHeader(duration_s=probed))
    known = [d for d in (planned, probed) if d is not None]
    assert found == (min(known) if known else None)


def core_farm() -> Farm:
    """A core with one agent that can push RTMP, timed by the production stall window."""
    timers = TimerSettings(heartbeat_s=5.0, agent_lost_after_s=1e9, stalled_after_s=STALL_S)
    farm = Farm(SchedulerCore(SchedulerSettings(timers=timers)))
    farm.register("a1", msgspec.structs.replace(CPU, protocols=("file", "rtmp")))
    return farm


def test_an_endless_live_stream_is_assigned_no_budget_and_runs_a_day() -> None:
    """A test pattern to RTMP without a duration: budget 0, alive as long as it advances."""
    farm = core_farm()
    farm.submit("live", input="testsrc2", output=RTMP)
    (assigned,) = [e for e in farm.plan() if isinstance(e, JobAssigned)]
    assert assigned.budget_s == NO_BUDGET
    farm.report("live", Start(agent="a1", attempt=1))
    for beat in range(1, int(24 * 3600 / 5)):
        farm.now += 5.0
        progress = RunningJob(job="live", attempt=1, frames=150 * beat)
        farm.core.heard_from(
            Heartbeat(agent="a1", at=farm.now, slots=1, free_slots=0, running=(progress,)),
            farm.now,
        )
        assert not farm.tick()
    assert farm.core.jobs["live"].status is JobStatus.RUNNING


def test_an_attempt_without_a_budget_that_never_starts_is_timed_out_as_stalled() -> None:
    """No budget does not mean no timer: an assignment never started shows no life."""
    farm = core_farm()
    farm.submit("live", input="testsrc2", output=RTMP, max_retries=0)
    farm.plan()
    farm.now += STALL_S - 1
    assert not farm.tick()
    farm.now += 2
    (timed_out,) = [e for e in farm.tick() if isinstance(e, JobTimedOut)]
    assert timed_out.kind is TimeoutKind.STALLED


def test_a_whole_input_is_budgeted_from_the_media_the_agent_found() -> None:
    """No budget at assignment; the heartbeat's media_s gives one; over it, timed out (budget)."""
    farm = core_farm()
    farm.submit("whole", input="/media/in.mp4", output="/out/a.mp4", max_retries=0)
    (assigned,) = [e for e in farm.plan() if isinstance(e, JobAssigned)]
    assert assigned.budget_s == NO_BUDGET
    farm.report("whole", Start(agent="a1", attempt=1))
    started = farm.now
    budget = time_budget_s(scenario("720p-h264"), 600.0)
    frames = 0
    while not (found := [e for e in farm.tick() if isinstance(e, JobTimedOut)]):
        farm.now += 5.0
        frames += 1  # advancing, far too slowly: never stalled, but over its budget
        progress = RunningJob(job="whole", attempt=1, frames=frames, media_s=600.0)
        heartbeat = Heartbeat(agent="a1", at=farm.now, slots=1, free_slots=0, running=(progress,))
        farm.core.heard_from(heartbeat, farm.now)
        assert farm.now - started <= budget + 10.0
    (timed_out,) = found
    assert timed_out.kind is TimeoutKind.BUDGET
    assert timed_out.at - started > budget


def test_status_shows_the_media_done_and_of_how_much() -> None:
    """``jobs status``: a live stream without an end shows the seconds streamed, a file of what."""
    from ffrtmp.cli.jobviews import _fields  # noqa: PLC0415 -- the CLI's rows, tested alone

    endless = validate(JobSpec(scenario="720p-h264", output=RTMP))
    state = JobState(job="j", status=JobStatus.RUNNING, spec=endless)
    streaming = RunningJob(job="j", attempt=1, out_time_s=4321.5)
    rows = dict(_fields(state, streaming, ""))
    assert rows["Duration"] == "until canceled"
    assert rows["Progress"] == "0% (4321.5 s)"
    whole = RunningJob(job="j", attempt=1, percent=25.0, out_time_s=150.0, media_s=600.0)
    assert dict(_fields(state, whole, ""))["Progress"] == "25% (150.0 s of 600 s)"


@pytest.mark.parametrize(
    ("given", "media", "output", "expected"),
    [
        (250.0, 600.0, "/out/a.mp4", 250.0),  # the scheduler's budget stands
        (0.0, None, RTMP, NO_BUDGET),  # an endless stream keeps none
        (0.0, 600.0, "/out/a.mp4", time_budget_s(scenario("720p-h264"), 600.0)),
        (0.0, 600.0, RTMP, time_budget_s(scenario("720p-h264"), 600.0, paced=True)),
    ],
)
def test_the_agents_watchdog_follows_the_media_it_found(
    given: float, media: float | None, output: str, expected: float
) -> None:
    """The agent's backstop: the dispatch's budget, else the same rule on the probed length."""
    spec = JobSpec(scenario="720p-h264", input="/media/in.mp4", output=output)
    dispatch = Dispatch(job="j", attempt=1, spec=spec, budget_s=given, after_seq=1, at=0.0)
    assert backstop_budget_s(dispatch, media) == expected
