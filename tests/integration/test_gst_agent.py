"""GStreamer jobs through the real scheduler and the real agent, wired as ``ffrtmp agent run`` is.

The agent detects FFmpeg and GStreamer for real (no GPU here), registers what it found, and
runs each dispatch on the engine its job names; every output is probed.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import msgspec
import psutil
import pytest
from anyio.streams.text import TextReceiveStream

from agent.attempt import AttemptSettings
from agent.capabilities import assemble
from agent.hardware import host
from agent.logs import read_log
from agent.main import engines
from agent.probe import probe as probe_ffmpeg
from agent.service import AgentService, AgentSettings
from events.agent_events import AgentRegistered, Capabilities
from events.commands import CancelJob, PauseJob, ResumeJob
from events.enums import Engine, FailureReason, JobStatus
from events.jetstream import JetStreamEventStore
from events.job_events import JobCompleted, JobRejected, JobTimedOut
from ffrtmp.cli import nodes
from ffrtmp.natsd import NatsServer
from tests.cli_support import Cli
from tests.farm import Farm, liveness, scheduler, wait_until
from tests.gstreamer import FFMPEG, media_children, require_gstreamer
from tests.mediaprobe import probe
from tests.receivers import HttpServer, RtmpServer

pytestmark = pytest.mark.anyio
S = JobStatus
QUICK = AgentSettings(heartbeat_s=0.2, attempt=AttemptSettings(poll_s=0.05))
HEARTBEAT_S = 0.25
Start = Callable[..., Awaitable[AgentService]]


def detected() -> Capabilities:
    """What ``ffrtmp agent run`` registers on this machine (no GPU is tried)."""
    gst = require_gstreamer()
    return assemble(probe_ffmpeg(Path(FFMPEG)), host(), [], lambda _enc, _gpu: False, gst)


@pytest.fixture
async def start_agent(farm: Farm, tmp_path: Path) -> AsyncIterator[Start]:
    """Start agents with the real engines; each is stopped (deregistered) at the end."""
    started: list[AgentService] = []

    async def start(
        name: str = "gst", caps: Capabilities | None = None, settings: AgentSettings = QUICK
    ) -> AgentService:
        caps = caps or detected()
        chooser = engines(FFMPEG, require_gstreamer(), caps, tmp_path, None)
        service = AgentService(farm.store.nc, farm.store, farm.subjects, name, caps, chooser,
                               settings)  # fmt: skip
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


def test_the_agent_advertises_gstreamer_with_the_elements_found() -> None:
    """Detection offers both engines and the elements the scenarios here use."""
    caps = detected()
    assert caps.engines == ("ffmpeg", "gstreamer")
    assert {"x264enc", "x265enc", "flvmux", "rtmp2sink", "srtsink", "mp4mux"} <= set(
        caps.gst_elements
    )
    assert caps.gst_version.startswith("1.")


async def test_gstreamer_job_completes_with_a_right_file(
    farm: Farm, start_agent: Start, tmp_path: Path
) -> None:
    """An --engine gstreamer job runs gst-launch on the agent; the file holds what was asked."""
    await start_agent()
    output = tmp_path / "gst.mp4"
    async with scheduler(farm.store):
        await farm.submit("g1", scenario="480p-hevc", engine=Engine.GSTREAMER, input="testsrc2",
                          duration_s=1.0, output=str(output))  # fmt: skip
        await farm.wait_status("g1", S.COMPLETED)
    completed = (await farm.history("g1"))[-1]
    assert isinstance(completed, JobCompleted)
    media = probe(output)
    assert (media.video_codec, media.video_tag) == ("hevc", "hvc1")
    assert (media.width, media.height) == (854, 480)
    assert media.frames == completed.results.frames == 30
    assert media.duration_s == pytest.approx(1.0, abs=0.1)
    assert media.faststart
    assert completed.results.output_bytes == output.stat().st_size
    log = await read_log(farm.js, farm.subjects, "g1", 1)
    assert log.startswith(b"$ ")
    assert b"gst-launch-1.0 -e" in log.splitlines()[0]


async def test_auto_runs_on_ffmpeg_where_it_can_and_on_gstreamer_where_it_cannot(
    farm: Farm, start_agent: Start, tmp_path: Path
) -> None:
    """Auto prefers FFmpeg; an agent whose FFmpeg lacks libx264 runs the job on GStreamer."""
    full = await start_agent("both")
    async with scheduler(farm.store):
        await farm.submit("a1", scenario="480p-h264", engine=Engine.AUTO, input="testsrc2",
                          duration_s=1.0, output=str(tmp_path / "a1.mp4"))  # fmt: skip
        await farm.wait_status("a1", S.COMPLETED)
        await full.stop()
        caps = detected()
        no_x264 = msgspec.structs.replace(
            caps, encoders=tuple(e for e in caps.encoders if e != "libx264")
        )
        await start_agent("gst-only-x264", no_x264)
        await farm.submit("a2", scenario="480p-h264", engine=Engine.AUTO, input="testsrc2",
                          duration_s=1.0, output=str(tmp_path / "a2.mp4"))  # fmt: skip
        await farm.wait_status("a2", S.COMPLETED)
    ffmpeg_log = await read_log(farm.js, farm.subjects, "a1", 1)
    gst_log = await read_log(farm.js, farm.subjects, "a2", 1)
    assert b"gst-launch" not in ffmpeg_log
    assert b"gst-launch-1.0 -e" in gst_log
    assert probe(tmp_path / "a1.mp4").frames == probe(tmp_path / "a2.mp4").frames == 30


async def test_a_job_needing_an_element_no_agent_has_is_rejected_naming_it(
    farm: Farm, start_agent: Start
) -> None:
    """AV1 on GStreamer without svtav1enc anywhere is rejected at once, naming the element."""
    caps = await start_agent()
    assert "svtav1enc" not in caps.capabilities.gst_elements
    async with scheduler(farm.store):
        await farm.submit("av1", scenario="480p-av1", engine=Engine.GSTREAMER, output="none")
        await farm.wait_status("av1", S.REJECTED)
    rejected = (await farm.history("av1"))[-1]
    assert isinstance(rejected, JobRejected)
    assert "GStreamer element svtav1enc" in rejected.message


async def stopped(process: psutil.Process, *, expected: bool) -> None:
    """Wait until the kernel shows the process stopped (or running again)."""

    async def there() -> bool:
        return (process.status() == psutil.STATUS_STOPPED) is expected

    await wait_until(there, f"gst-launch {'stopped' if expected else 'continued'}")


async def test_pause_resume_cancel_act_on_gst_launch(farm: Farm, start_agent: Start) -> None:
    """Pause stops the gst-launch process, resume continues it, cancel ends it and the job."""
    await start_agent()
    async with scheduler(farm.store):
        await farm.submit("long", scenario="480p-h264", engine=Engine.GSTREAMER,
                          input="testsrc2", duration_s=3600.0)  # fmt: skip
        await farm.wait_status("long", S.RUNNING)

        async def one_pipeline() -> bool:
            return len(media_children("gst-launch")) == 1

        await wait_until(one_pipeline, "gst-launch to run")
        (process,) = media_children("gst-launch")
        await farm.send(PauseJob(id="pause-1", job="long", at=1.0))
        await farm.wait_status("long", S.PAUSED)
        await stopped(process, expected=True)  # a signal lands when the process next runs
        await farm.send(ResumeJob(id="resume-1", job="long", at=2.0))
        await farm.wait_status("long", S.RUNNING)
        await stopped(process, expected=False)
        await farm.send(CancelJob(id="cancel-1", job="long", at=3.0))
        canceled = await farm.wait_status("long", S.CANCELED)
    assert canceled.agent == "gst"
    assert not process.is_running()
    assert media_children("gst-launch") == []


async def test_missing_input_is_a_user_error_without_retry(
    farm: Farm, start_agent: Start, tmp_path: Path
) -> None:
    """A GStreamer job whose input file is not there fails user_error at once."""
    await start_agent()
    missing = tmp_path / "missing.mp4"
    async with scheduler(farm.store):
        await farm.submit("bad", scenario="480p-h264", engine=Engine.GSTREAMER,
                          input=str(missing), max_retries=3)  # fmt: skip
        failed = await farm.wait_status("bad", S.FAILED)
    assert (failed.reason, failed.attempt) == (FailureReason.USER_ERROR, 1)
    assert str(missing) in failed.message
    assert "JobRetrying" not in await farm.kinds("bad")


async def test_a_404_url_is_a_user_error_without_retry(
    farm: Farm, start_agent: Start, http_server: HttpServer
) -> None:
    """GStreamer's 404 from an HTTP input is the job's fault: failed, not retried."""
    await start_agent()
    async with scheduler(farm.store):
        await farm.submit("gone", scenario="480p-h264", engine=Engine.GSTREAMER,
                          input=http_server.missing_url, max_retries=3)  # fmt: skip
        failed = await farm.wait_status("gone", S.FAILED)
    assert failed.reason is FailureReason.USER_ERROR
    assert "404" in failed.message
    assert "JobRetrying" not in await farm.kinds("gone")


@pytest.mark.timeout(120)
async def test_a_live_gstreamer_stream_many_stall_windows_long_completes(
    farm: Farm, start_agent: Start, rtmp_server: RtmpServer
) -> None:
    """8 s live to nginx-rtmp with a 1.5 s stall window: GStreamer's progress keeps it alive."""
    await start_agent(settings=AgentSettings(heartbeat_s=HEARTBEAT_S))
    async with scheduler(farm.store, liveness(1.5, HEARTBEAT_S)):
        url = rtmp_server.url("live")
        await farm.submit("live", scenario="480p-h264", engine=Engine.GSTREAMER, output=url,
                          duration_s=8.0, max_retries=0)  # fmt: skip
        await farm.wait_status("live", S.COMPLETED, S.FAILED)
    history = await farm.history("live")
    assert not [e for e in history if isinstance(e, JobTimedOut)], history
    assert isinstance(history[-1], JobCompleted), history[-1]
    recording = probe(rtmp_server.wait_recorded("live"))
    assert recording.duration_s == pytest.approx(8.0, abs=0.5)
    assert recording.audio_codec == "aac"  # the silent track ingests expect


@pytest.mark.timeout(120)
async def test_a_gst_launch_stopped_from_outside_is_timed_out_as_stalled(
    farm: Farm, start_agent: Start, rtmp_server: RtmpServer
) -> None:
    """SIGSTOP of gst-launch behind the agent's back: heartbeats go on, frames do not."""
    await start_agent(settings=AgentSettings(heartbeat_s=HEARTBEAT_S))
    async with scheduler(farm.store, liveness(2.0, HEARTBEAT_S)):
        url = rtmp_server.url("stuck")
        await farm.submit("stuck", scenario="480p-h264", engine=Engine.GSTREAMER, output=url,
                          duration_s=60.0, max_retries=0)  # fmt: skip
        await farm.wait_status("stuck", S.RUNNING)

        async def one_pipeline() -> bool:
            return len(media_children("gst-launch")) == 1

        await wait_until(one_pipeline, "gst-launch to run")
        (process,) = media_children("gst-launch")
        process.send_signal(signal.SIGSTOP)
        try:
            failed = await farm.wait_status("stuck", S.FAILED)
        finally:
            with contextlib.suppress(psutil.Error):
                process.send_signal(signal.SIGCONT)
    assert failed.reason is FailureReason.TIMEOUT
    timed_out = [e for e in await farm.history("stuck") if isinstance(e, JobTimedOut)]
    assert len(timed_out) == 1


async def test_nodes_describe_shows_the_engines_and_gstreamer(
    farm: Farm, start_agent: Start, nats_server: NatsServer, prefix: str, tmp_path: Path
) -> None:
    """An operator sees which engines a node offers and which GStreamer elements it has."""
    await start_agent()
    cli = Cli(nats_server.url, prefix, tmp_path)
    async with scheduler(farm.store):
        described = await cli(nodes.app, "describe", "gst")
    assert described.exit_code == 0, described.stdout
    assert "ffmpeg, gstreamer" in described.stdout
    assert "x264enc" in described.stdout


WITH_GST = (None, ("ffmpeg", "gstreamer"))
WITHOUT_GST = ("/nonexistent/gst-launch-1.0", ("ffmpeg",))


@pytest.mark.parametrize(("launcher", "engines"), [WITH_GST, WITHOUT_GST])
async def test_agent_run_offers_gstreamer_only_where_it_runs(
    nats_server: NatsServer,
    jetstream_store: JetStreamEventStore,
    prefix: str,
    launcher: str | None,
    engines: tuple[str, ...],
) -> None:
    """``ffrtmp agent run`` registers GStreamer and its elements; a missing launcher: FFmpeg."""
    require_gstreamer()
    argv = [sys.executable, "-c", "from ffrtmp.cli import main; main()", "agent", "run",
            "--nats", nats_server.url, "--prefix", prefix, "--id", "g-1", "--health-port", "0",
            *(["--gst-launch", launcher] if launcher else [])]  # fmt: skip
    with anyio.fail_after(60):
        async with await anyio.open_process(argv) as proc:
            assert proc.stdout is not None
            text = ""
            async for chunk in TextReceiveStream(proc.stdout):
                text += chunk
                if "health on port" in text:
                    break
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0, text
    (registered,) = [e async for _, e in jetstream_store.replay() if isinstance(e, AgentRegistered)]
    caps = registered.capabilities
    assert caps.engines == engines
    assert ("x264enc" in caps.gst_elements) is (launcher is None)
