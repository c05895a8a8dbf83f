"""FfmpegEngine with the real FFmpeg on tiny test patterns: results, failures, controls, RTMP."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import psutil
import pytest

from agent.engine import Done, Failed, Stopped
from agent.ffmpeg_engine import EngineSettings, FfmpegEngine, FfmpegExecution
from events.enums import FailureReason, QualityMetric
from events.spec import JobSpec
from events.work import Dispatch
from tests.farm import wait_until
from tests.mediaprobe import probe
from tests.receivers import FfmpegListener

pytestmark = pytest.mark.anyio

PATTERN = "testsrc2=size=160x90:rate=30"
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture
def engine(tmp_path: Path) -> FfmpegEngine:
    """An engine on the bundled FFmpeg, writing its own files under the test's directory."""
    return FfmpegEngine(EngineSettings(ffmpeg=FFMPEG, cores=2, work_dir=str(tmp_path)))


def dispatch(**spec: object) -> Dispatch:
    """A dispatch of a 1 s 480p job from the tiny pattern, with ``spec`` fields changed."""
    fields: dict[str, object] = {"scenario": "480p-h264", "input": PATTERN, "duration_s": 1.0}
    fields.update(spec)
    return Dispatch(job="j1", attempt=1, spec=JobSpec(**fields), budget_s=60, after_seq=1, at=0)  # type: ignore[arg-type]


async def started(engine: FfmpegEngine, **spec: object) -> FfmpegExecution:
    """Start a job and insist that it started."""
    execution = await engine.start(dispatch(**spec))
    assert isinstance(execution, FfmpegExecution), execution
    return execution


async def encoding(execution: FfmpegExecution) -> None:
    """Wait until FFmpeg reports its first encoded frames."""

    async def frames() -> bool:
        return execution.progress().frames > 0

    await wait_until(frames, "first progress block")


async def test_job_completes_with_plausible_results(engine: FfmpegEngine, tmp_path: Path) -> None:
    """A 1 s pattern at 30 fps encodes 30 frames into a file whose size the results report."""
    output = tmp_path / "out.mp4"
    execution = await started(engine, output=str(output))
    ending = await execution.wait()
    assert isinstance(ending, Done), ending
    results = ending.results
    assert results.frames == 30
    assert results.output_bytes == output.stat().st_size > 0
    assert results.wall_s > 0
    assert results.encode_fps == pytest.approx(30 / results.wall_s)
    assert results.speed == pytest.approx(1.0 / results.wall_s)
    assert results.cpu_s is not None
    assert results.cpu_s > 0
    assert results.frames_per_cpu_s == pytest.approx(30 / results.cpu_s)
    assert results.bitrate_kbps == pytest.approx(results.output_bytes * 8 / 1000)
    assert results.energy_j is None or results.energy_j > 0  # absent where unmeasured, never 0
    assert results.stalls is None  # a file is not a live output
    assert execution.progress().percent == 100.0
    assert b"frame=" in execution.log_tail()


async def test_missing_input_is_a_user_error_before_ffmpeg_starts(
    engine: FfmpegEngine, tmp_path: Path
) -> None:
    """An input file that is not there is refused at start as the job's fault."""
    ending = await engine.start(dispatch(input=str(tmp_path / "absent.mp4")))
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.USER_ERROR
    assert "absent.mp4" in ending.message


async def test_unreadable_input_data_is_a_user_error(engine: FfmpegEngine, tmp_path: Path) -> None:
    """A file FFmpeg cannot demux fails the attempt as user_error, naming FFmpeg's complaint."""
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"this is not a video" * 100)
    execution = await started(engine, input=str(garbage))
    ending = await execution.wait()
    assert isinstance(ending, Failed), ending
    assert ending.reason is FailureReason.USER_ERROR
    assert "Invalid data" in ending.message


async def test_ffmpeg_killed_externally_is_a_runtime_error(engine: FfmpegEngine) -> None:
    """SIGKILL from outside the agent ends the attempt as runtime_error naming the signal."""
    execution = await started(engine, duration_s=60.0)
    await encoding(execution)
    os.kill(execution.pid, signal.SIGKILL)
    ending = await execution.wait()
    assert isinstance(ending, Failed), ending
    assert ending.reason is FailureReason.RUNTIME_ERROR
    assert "SIGKILL" in ending.message


async def test_pause_stops_the_process_and_resume_lets_it_complete(engine: FfmpegEngine) -> None:
    """Pause leaves FFmpeg stopped (at the lower priority); after resume it completes."""
    # Long enough to be still encoding at its first progress block (every 0.5 s) on an idle
    # machine: 3 s of video finished before it, and the process was gone when looked at.
    execution = await started(engine, duration_s=20.0)
    await encoding(execution)
    process = psutil.Process(execution.pid)
    assert process.nice() == 10
    assert execution.pause()
    assert not execution.pause()  # already paused

    async def status_is(wanted: str) -> bool:
        return bool(process.status() == wanted)

    await wait_until(lambda: status_is(psutil.STATUS_STOPPED), "FFmpeg stopped")
    assert execution.resume()
    assert not execution.resume()
    assert process.status() != psutil.STATUS_STOPPED
    ending = await execution.wait()
    assert isinstance(ending, Done), ending
    assert ending.results.frames == 600


async def test_cancel_ends_the_attempt_and_leaves_no_process(engine: FfmpegEngine) -> None:
    """Cancel of a running encode gives Stopped, and its process is gone."""
    execution = await started(engine, duration_s=60.0)
    await encoding(execution)
    await execution.cancel()
    assert isinstance(await execution.wait(), Stopped)
    assert not psutil.pid_exists(execution.pid)


async def test_cancel_of_a_paused_attempt(engine: FfmpegEngine) -> None:
    """A stopped FFmpeg is continued so it can act on SIGTERM, and the attempt is Stopped."""
    execution = await started(engine, duration_s=60.0)
    await encoding(execution)
    assert execution.pause()
    await execution.cancel()
    assert isinstance(await execution.wait(), Stopped)
    assert not psutil.pid_exists(execution.pid)


async def test_quality_metrics_when_asked(engine: FfmpegEngine, tmp_path: Path) -> None:
    """PSNR, SSIM and VMAF of the output against its source land in the results, and QoE."""
    metrics = (QualityMetric.PSNR, QualityMetric.SSIM, QualityMetric.VMAF)
    execution = await started(engine, output=str(tmp_path / "q.mkv"), quality_metrics=metrics)
    ending = await execution.wait()
    assert isinstance(ending, Done), ending
    results = ending.results
    assert results.psnr is not None
    assert 30 < results.psnr < 100
    assert results.ssim is not None
    assert 0.9 < results.ssim <= 1.0
    assert results.vmaf is not None
    assert 50 < results.vmaf <= 100
    assert results.qoe == pytest.approx(results.vmaf)  # no stalls on a file output


async def test_disk_nearly_full_is_a_resource_error(tmp_path: Path) -> None:
    """When the output's disk has less free space than the agent keeps, the attempt is refused."""
    settings = EngineSettings(ffmpeg=FFMPEG, work_dir=str(tmp_path), min_free_bytes=1 << 62)
    ending = await FfmpegEngine(settings).start(dispatch(output=str(tmp_path / "out.mp4")))
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.RESOURCE_ERROR
    assert "free" in ending.message


@pytest.fixture(params=["rtmp", "srt"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FfmpegListener]:
    """A real FFmpeg receiver (RTMP or SRT) on a free loopback port, recording to a file."""
    with FfmpegListener(tmp_path / "receiver", FFMPEG, protocol=request.param) as listener:
        yield listener


async def test_live_push_reaches_a_real_receiver(
    engine: FfmpegEngine, receiver: FfmpegListener
) -> None:
    """A 1 s job pushed live (and teed for PSNR) is recorded with about 1 s of media."""
    assert receiver.listening()  # the fixture waited for the socket
    execution = await started(engine, output=receiver.url, quality_metrics=(QualityMetric.PSNR,))
    ending = await execution.wait()
    assert isinstance(ending, Done), ending
    assert ending.results.stalls is not None
    assert ending.results.psnr is not None

    async def recorded() -> bool:
        return receiver.recorded()

    await wait_until(recorded, "the receiver to finish")
    assert receiver.process is not None
    assert receiver.process.returncode == 0, receiver.stderr()
    assert probe(receiver.recording).duration_s == pytest.approx(1.0, abs=0.2)


async def test_unknown_scenario_is_a_user_error(engine: FfmpegEngine) -> None:
    """A dispatch naming a scenario this agent does not know fails at once, not with a crash."""
    ending = await engine.start(dispatch(scenario="8K-h266"))
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.USER_ERROR
    assert "8K-h266" in ending.message
