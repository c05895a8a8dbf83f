"""GstEngine on the machine's GStreamer: what only this engine has to get right.

The behaviour both engines share is proven by ``tests/contract/test_engine_contract.py``; here:
values gst-launch must parse back (odd paths), inputs with no audio or shorter than the job,
URL inputs, GStreamer's own refusals, and the pipeline that leads the attempt's log.
"""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from pathlib import Path

import pytest

from agent.engine import Done, Ending, Failed
from agent.gst_engine import GstEngine, GstExecution
from agent.gst_pipeline import quote
from events.enums import Engine, FailureReason
from events.spec import JobSpec
from events.work import Dispatch
from tests.gstreamer import FFMPEG, gst_engine
from tests.mediaprobe import probe
from tests.receivers import HttpServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def engine(tmp_path: Path) -> GstEngine:
    """The engine on this machine's GStreamer."""
    return gst_engine(tmp_path)


def clip(path: Path, seconds: float, *, audio: bool) -> Path:
    """A 320x240 25 fps clip, with a tone when ``audio``."""
    tone = ["-f", "lavfi", "-i", "sine=sample_rate=44100"] if audio else []
    argv = [FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i",
            "testsrc2=size=320x240:rate=25", *tone, "-t", f"{seconds:g}",
            "-c:v", "libx264", "-preset", "ultrafast", str(path)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603
    return path


async def run(engine: GstEngine, **fields: object) -> tuple[GstExecution, Ending]:
    """Run a 1 s 480p H.264 job with ``fields`` changed; the execution and its end."""
    spec: dict[str, object] = {"scenario": "480p-h264", "engine": Engine.GSTREAMER,
                               "duration_s": 1.0}  # fmt: skip
    spec.update(fields)
    job = Dispatch(job="g", attempt=1, spec=JobSpec(**spec), budget_s=60, after_seq=1, at=0)  # type: ignore[arg-type]
    execution = await engine.start(job)
    assert isinstance(execution, GstExecution), execution
    return execution, await execution.wait()


@pytest.mark.parametrize(
    "name", ['a "quoted" name.mp4', "spaces and ! bangs.mkv", "back\\slash.ts"]
)
async def test_odd_paths_reach_gst_launch_whole(
    engine: GstEngine, tmp_path: Path, name: str
) -> None:
    """A file name with quotes, spaces, ``!`` or backslashes is written exactly there."""
    source = clip(tmp_path / f"in {name}.mp4", 2, audio=True)
    output = tmp_path / name
    _, ending = await run(engine, input=str(source), output=str(output))
    assert isinstance(ending, Done), ending
    assert probe(output).frames == 30


async def test_input_without_audio_gives_a_video_only_file(
    engine: GstEngine, tmp_path: Path
) -> None:
    """No audio stream: no audio pad waits for data, the encode ends, the file has video only."""
    output = tmp_path / "v.mp4"
    _, ending = await run(engine, input=str(clip(tmp_path / "v-in.mp4", 2, audio=False)),
                          output=str(output))  # fmt: skip
    assert isinstance(ending, Done), ending
    media = probe(output)
    assert (media.frames, media.audio_codec) == (30, None)


async def test_input_shorter_than_the_duration_ends_with_it(
    engine: GstEngine, tmp_path: Path
) -> None:
    """A 1 s input asked for 5 s ends at the input's end, with what it had."""
    output = tmp_path / "short.mp4"
    execution, ending = await run(engine, input=str(clip(tmp_path / "s.mp4", 1, audio=True)),
                                  output=str(output), duration_s=5.0)  # fmt: skip
    assert isinstance(ending, Done), ending
    assert ending.results.frames == probe(output).frames == pytest.approx(30, abs=1)
    assert execution.progress().percent == 100.0


async def test_http_input_is_cut_with_its_audio(
    engine: GstEngine, tmp_path: Path, http_server: HttpServer
) -> None:
    """A clip served over HTTP is decoded by uridecodebin and cut at the duration."""
    clip(http_server.root / "web.mp4", 3, audio=True)
    output = tmp_path / "web.mp4"
    _, ending = await run(engine, input=http_server.url("web.mp4"), output=str(output))
    assert isinstance(ending, Done), ending
    media = probe(output)
    assert (media.frames, media.audio_codec) == (30, "aac")


async def test_a_property_gstreamer_refuses_is_a_user_error(engine: GstEngine) -> None:
    """A preset x264enc does not know fails the job as the job's fault, naming the property."""
    _, ending = await run(engine, preset="bogus")
    assert isinstance(ending, Failed), ending
    assert ending.reason is FailureReason.USER_ERROR
    assert "speed-preset" in ending.message


async def test_a_job_the_engine_cannot_express_is_refused_before_starting(
    engine: GstEngine,
) -> None:
    """A color name GStreamer has no value for: refused as user_error, nothing runs."""
    job = Dispatch(job="g", attempt=1, spec=JobSpec(scenario="480p-h264", engine=Engine.GSTREAMER,
                   input="color=color=DarkOrchid"), budget_s=60, after_seq=1, at=0)  # fmt: skip
    refused = await engine.start(job)
    assert isinstance(refused, Failed)
    assert refused.reason is FailureReason.USER_ERROR
    assert "DarkOrchid" in refused.message


async def test_the_log_starts_with_the_exact_pipeline(engine: GstEngine, tmp_path: Path) -> None:
    """``jobs logs`` shows the command line that ran, quoted so a shell runs it again."""
    output = tmp_path / "log.mp4"
    execution, ending = await run(engine, output=str(output))
    assert isinstance(ending, Done), ending
    first = execution.log_tail().decode().splitlines()[0]
    assert first.startswith("$ ")
    assert "gst-launch-1.0 -e -v videotestsrc" in first
    again_at = quote(str(tmp_path / "again.mp4"))
    argv = [
        f"location={again_at}" if arg.startswith("location=") else arg
        for arg in shlex.split(first[2:])
    ]
    again = await asyncio.to_thread(subprocess.run, argv, capture_output=True, timeout=60)
    assert again.returncode == 0, again.stderr[-400:]
    assert probe(tmp_path / "again.mp4").frames == 30


@pytest.mark.parametrize(("scenario", "kbps"), [("480p-h264", 1200), ("480p-hevc", 840)])
async def test_the_encoder_keeps_to_the_scenarios_bitrate(
    engine: GstEngine, tmp_path: Path, scenario: str, kbps: int
) -> None:
    """Over a 10 s moving pattern the video bitrate stays within 5 % of the scenario's."""
    output = tmp_path / f"{scenario}.mp4"
    _, ending = await run(engine, scenario=scenario, duration_s=10.0, output=str(output))
    assert isinstance(ending, Done), ending
    media = probe(output)
    assert media.frames == 300
    assert media.video_kbps == pytest.approx(kbps, rel=0.05)


async def test_a_file_without_a_duration_is_encoded_whole(
    engine: GstEngine, tmp_path: Path
) -> None:
    """No duration: the whole 3 s clip, its length known from the start for percent."""
    output = tmp_path / "whole.mp4"
    execution, ending = await run(engine, input=str(clip(tmp_path / "w.mp4", 3, audio=True)),
                                  output=str(output), duration_s=None)  # fmt: skip
    assert isinstance(ending, Done), ending
    media = probe(output)
    assert ending.results.frames == media.frames == pytest.approx(90, abs=1)
    assert media.audio_codec == "aac"
    assert execution.progress().media_s == pytest.approx(3.0, abs=0.05)


@pytest.mark.parametrize(
    ("pattern", "frames"),
    [("testsrc2=size=320x240:rate=25:duration=0.4", 12), ("color=color=0x336699", 30)],
)
async def test_pattern_options_run_as_ffmpeg_reads_them(
    engine: GstEngine, tmp_path: Path, pattern: str, frames: int
) -> None:
    """Size, rate, duration and color of a pattern reach videotestsrc; the frame is the scenario."""
    output = tmp_path / "p.mp4"
    _, ending = await run(engine, input=pattern, output=str(output))
    assert isinstance(ending, Done), ending
    media = probe(output)
    assert (media.width, media.height, media.frames) == (854, 480, frames)
