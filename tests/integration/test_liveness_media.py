"""Liveness with the production rules: the real scheduler, agent, FFmpeg and receivers.

The only things scaled down are the settings the README names: the scheduler's
``--stalled-after-s`` and the agents' ``--heartbeat-s``. Milestones stay at 25/50/75 % and the
agent's progress poll at its default, so an attempt runs several stall windows between two
milestones, as a long live stream or a slow encode does at production scale.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Final

import imageio_ffmpeg
import msgspec
import psutil
import pytest

from agent.engine import Done
from agent.ffmpeg_engine import EngineSettings, FfmpegEngine, FfmpegExecution
from agent.service import AgentService, AgentSettings
from events.codec import decode_heartbeat
from events.commands import CancelJob
from events.enums import JobStatus, QualityMetric, TimeoutKind
from events.job_events import JobAssigned, JobCompleted, JobStarted, JobTimedOut
from events.policy import NO_BUDGET
from events.spec import JobSpec
from events.work import Dispatch, Heartbeat
from ffrtmp.natsd import free_port
from tests.farm import CPU, Farm, liveness, scheduler, wait_until
from tests.gstreamer import media_children
from tests.mediaprobe import probe
from tests.receivers import RtmpServer, rtmp_server

pytestmark = pytest.mark.anyio
S = JobStatus
FFMPEG: Final = imageio_ffmpeg.get_ffmpeg_exe()
HEARTBEAT_S: Final = 0.25
LIVE_CPU: Final = msgspec.structs.replace(CPU, protocols=("file", "http", "rtmp", "srt"))
__all__ = ["rtmp_server"]  # the fixture, used by name


@pytest.fixture
async def ffmpeg_agent(farm: Farm, tmp_path: Path) -> AsyncIterator[AgentService]:
    """An agent on the bundled FFmpeg with production attempt settings, heartbeats scaled."""
    engine = FfmpegEngine(EngineSettings(ffmpeg=FFMPEG, cores=2, work_dir=str(tmp_path)))
    service = AgentService(
        farm.store.nc, farm.store, farm.subjects, "ff", LIVE_CPU, engine,
        AgentSettings(heartbeat_s=HEARTBEAT_S),
    )  # fmt: skip
    await service.start()
    yield service
    await service.stop(deregister=False)


async def ended(farm: Farm, job: str, deadline_s: float = 90.0) -> JobStatus:
    """Wait (past the farm's short default) until the job is completed or failed."""

    async def done() -> bool:
        return (await farm.state(job)).status in {S.COMPLETED, S.FAILED}

    try:
        await wait_until(done, f"job {job} to end", deadline_s)
    except AssertionError:
        raise AssertionError(await farm.history(job)) from None
    return (await farm.state(job)).status


async def last_beat(farm: Farm, agent: str) -> Heartbeat:
    """The heartbeat stream's last message from ``agent``."""
    subjects = farm.subjects
    msg = await farm.js.get_last_msg(subjects.heartbeat_stream, subjects.heartbeat(agent))
    assert msg.data is not None
    return decode_heartbeat(msg.data)


def encoder_of(url: str) -> psutil.Process | None:
    """The FFmpeg this test process started that writes ``url``."""
    for child in media_children("ffmpeg"):
        with contextlib.suppress(psutil.Error):
            if url in child.cmdline():
                return child
    return None


@pytest.mark.usefixtures("ffmpeg_agent")
@pytest.mark.timeout(120)
async def test_a_live_stream_many_stall_windows_long_completes(
    farm: Farm, rtmp_server: RtmpServer
) -> None:
    """12 s live at 1.0x with a 1.5 s window (milestones 3 s apart): completes, first attempt."""
    window_s, media_s = 1.5, 12.0
    async with scheduler(farm.store, liveness(window_s, HEARTBEAT_S)):
        await farm.submit(
            "live", scenario="480p-h264", output=rtmp_server.url("live"), duration_s=media_s,
            max_retries=0,
        )  # fmt: skip
        await ended(farm, "live")
    history = await farm.history("live")
    assert not [e for e in history if isinstance(e, JobTimedOut)], history
    started = next(e for e in history if isinstance(e, JobStarted))
    completed = history[-1]
    assert isinstance(completed, JobCompleted), history[-1]
    assert completed.attempt == 1
    assert completed.at - started.at > 5 * window_s  # paced: it ran many windows long
    recording = probe(rtmp_server.wait_recorded("live"))
    assert recording.duration_s == pytest.approx(media_s, abs=0.5)


@pytest.mark.usefixtures("ffmpeg_agent")
@pytest.mark.timeout(120)
async def test_a_live_stream_whose_ffmpeg_stops_is_timed_out_within_the_window(
    farm: Farm, rtmp_server: RtmpServer
) -> None:
    """SIGSTOP of the encoder from outside: the agent still heartbeats, the output does not."""
    window_s = 2.0
    url = rtmp_server.url("stuck")
    stopped: psutil.Process | None = None
    try:
        async with scheduler(farm.store, liveness(window_s, HEARTBEAT_S)):
            await farm.submit(
                "stuck", scenario="480p-h264", output=url, duration_s=120.0, max_retries=0
            )
            await farm.wait_status("stuck", S.RUNNING)

            async def encoding() -> bool:
                process = encoder_of(url)
                return process is not None and process.cpu_times().user > 0.5

            await wait_until(encoding, "the encoder to be streaming")
            stopped = encoder_of(url)
            assert stopped is not None
            stopped.send_signal(signal.SIGSTOP)
            stopped_at = time.time()
            assert await ended(farm, "stuck", 30.0) is S.FAILED
    finally:
        if stopped is not None:
            with contextlib.suppress(psutil.Error):
                stopped.send_signal(signal.SIGCONT)
                stopped.kill()
    (timed_out,) = [e for e in await farm.history("stuck") if isinstance(e, JobTimedOut)]
    assert timed_out.kind is TimeoutKind.STALLED
    # Its last advance was seen at most one heartbeat before the stop; the tick and a loaded
    # machine add a little.
    assert timed_out.at - stopped_at < window_s + 2.0


@pytest.mark.usefixtures("ffmpeg_agent")
@pytest.mark.timeout(120)
async def test_a_live_stream_without_a_duration_runs_until_canceled(
    farm: Farm, rtmp_server: RtmpServer
) -> None:
    """No duration, no budget: it streams past many windows and ends when an operator cancels."""
    window_s = 1.5
    async with scheduler(farm.store, liveness(window_s, HEARTBEAT_S)):
        await farm.submit("endless", scenario="480p-h264", output=rtmp_server.url("endless"))
        await farm.wait_status("endless", S.RUNNING)

        async def streamed() -> bool:  # the agent's heartbeat shows the media time it produced
            beat = await last_beat(farm, "ff")
            return any(r.out_time_s and r.out_time_s > 4 * window_s for r in beat.running)

        await wait_until(streamed, "several stall windows of stream", 60.0)
        await farm.send(CancelJob(id=farm.command_id(), job="endless", at=time.time()))
        await farm.wait_status("endless", S.CANCELED)
    history = await farm.history("endless")
    assert not [e for e in history if isinstance(e, JobTimedOut)], history
    (assigned,) = [e for e in history if isinstance(e, JobAssigned)]
    assert assigned.budget_s == NO_BUDGET
    recording = probe(rtmp_server.wait_recorded("endless"))
    assert recording.duration_s is not None
    assert recording.duration_s > 4 * window_s


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Serves one file at a fixed byte rate: an input that arrives no faster than real time."""

    body: bytes = b""
    seconds: float = 1.0

    def do_GET(self) -> None:
        """The whole file, trickled."""
        self.send_response(200)
        self.send_header("Content-Type", "video/mp2t")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        chunks = 100
        size = -(-len(self.body) // chunks)
        with contextlib.suppress(OSError):
            for start in range(0, len(self.body), size):
                self.wfile.write(self.body[start : start + size])
                self.wfile.flush()
                time.sleep(self.seconds / chunks)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
        """Say nothing."""


@pytest.fixture
def trickle(tmp_path: Path) -> Iterator[tuple[str, float]]:
    """A 48 s MPEG-TS clip served over HTTP in 24 s; yields its URL and media seconds.

    FFmpeg analyses about 5 s of media before its first frame: at 2x that is 2.5 s of silence,
    inside the test's window.
    """
    media_s = 48.0
    clip = tmp_path / "clip.ts"
    subprocess.run(  # noqa: S603
        [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
         "-i", f"testsrc2=size=160x90:rate=30:duration={media_s:g}", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "30", "-f", "mpegts", "-y", str(clip)],
        check=True,
    )  # fmt: skip
    handler = type("Trickle", (_Trickle,), {"body": clip.read_bytes(), "seconds": media_s / 2})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/clip.ts", media_s
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("ffmpeg_agent")
@pytest.mark.timeout(120)
async def test_a_slow_encode_over_the_old_window_is_not_killed(
    farm: Farm, tmp_path: Path, trickle: tuple[str, float]
) -> None:
    """An encode fed at 2x runs 6 s between milestones, over a 4 s window, and completes whole."""
    url, media_s = trickle
    window_s = 4.0
    output = tmp_path / "slow.mp4"
    async with scheduler(farm.store, liveness(window_s, HEARTBEAT_S)):
        await farm.submit(
            "slow", scenario="480p-h264", input=url, output=str(output), duration_s=media_s,
            max_retries=0,
        )  # fmt: skip
        await ended(farm, "slow")
    history = await farm.history("slow")
    assert not [e for e in history if isinstance(e, JobTimedOut)], history
    started = next(e for e in history if isinstance(e, JobStarted))
    assert isinstance(history[-1], JobCompleted), history[-1]
    assert history[-1].at - started.at > 4 * window_s  # it did run past the old rule
    assert probe(output).duration_s == pytest.approx(media_s, abs=0.5)


@pytest.mark.timeout(120)
async def test_the_quality_pass_shows_its_own_progress(tmp_path: Path) -> None:
    """The comparison after the encode reports frames compared, all of them by its end.

    A VMAF pass over a long file runs for minutes after the encode's last frame; the heartbeat
    shows it advancing through ``checked_frames``, so it is not taken for a stalled attempt.
    """
    engine = FfmpegEngine(EngineSettings(ffmpeg=FFMPEG, cores=2, work_dir=str(tmp_path)))
    spec = JobSpec(
        scenario="480p-h264", input="testsrc2=size=160x90:rate=30", duration_s=3.0,
        output=str(tmp_path / "q.mp4"), quality_metrics=(QualityMetric.PSNR,),
    )  # fmt: skip
    dispatch = Dispatch(job="q", attempt=1, spec=spec, budget_s=60, after_seq=1, at=0)
    execution = await engine.start(dispatch)
    assert isinstance(execution, FfmpegExecution), execution
    ending = await execution.wait()
    assert isinstance(ending, Done), ending
    assert ending.results.psnr is not None
    assert execution.progress().checked_frames == ending.results.frames == 90


@pytest.mark.usefixtures("ffmpeg_agent")
@pytest.mark.timeout(120)
async def test_a_live_source_without_a_duration_is_recorded_until_it_ends(
    farm: Farm, tmp_path: Path
) -> None:
    """An RTMP source played into a file, no duration: the job completes when the source ends.

    The source is FFmpeg serving one player (``-listen 1``), which closes the stream at its end
    (nginx-rtmp keeps players waiting for the next publisher). FFmpeg reads about 5 s of a live
    source before its first frame, so the window is 8 s here.
    """
    source_s, window_s = 12.0, 8.0
    url = f"rtmp://127.0.0.1:{free_port()}/live/src"
    output = tmp_path / "recorded.mp4"
    source = await asyncio.create_subprocess_exec(
        FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-re", "-f", "lavfi",
        "-i", f"testsrc2=size=320x180:rate=30:duration={source_s:g}", "-c:v", "libx264",
        "-preset", "ultrafast", "-g", "30", "-f", "flv", "-listen", "1", url,
    )  # fmt: skip
    try:
        async with scheduler(farm.store, liveness(window_s, HEARTBEAT_S)):
            await farm.submit(
                "rec", scenario="480p-h264", input=url, output=str(output), max_retries=0
            )
            status = await ended(farm, "rec", 60.0)
            assert status is S.COMPLETED, (await farm.history("rec"))[-1]
    finally:
        if source.returncode is None:
            source.kill()
        await source.wait()
    history = await farm.history("rec")
    (assigned,) = [e for e in history if isinstance(e, JobAssigned)]
    assert assigned.budget_s == NO_BUDGET
    recorded = probe(output)
    assert recorded.duration_s == pytest.approx(source_s, abs=1.0)
