"""One suite, two engines: FFmpeg and GStreamer run the same jobs to the same outcomes.

Each test runs against the real ``FfmpegEngine`` (the bundled FFmpeg) and the real
``GstEngine`` (the machine's ``gst-launch-1.0``), and every output is probed.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Protocol

import psutil
import pytest

from agent.engine import Done, Ending, Execution, Failed, Stopped
from agent.ffmpeg_engine import EngineSettings, FfmpegEngine
from events.enums import Engine, FailureReason
from events.spec import JobSpec
from events.work import Dispatch
from tests.farm import wait_until
from tests.gstreamer import FFMPEG, gst_engine
from tests.mediaprobe import probe
from tests.receivers import RtmpServer, SrtListener

pytestmark = pytest.mark.anyio

PROCESS_NAMES = {Engine.FFMPEG: "ffmpeg", Engine.GSTREAMER: "gst-launch"}


class Steered(Execution, Protocol):
    """An execution whose process a test can see."""

    @property
    def pid(self) -> int:
        """The engine's process."""
        ...


class AnyEngine(Protocol):
    """What the suite asks of either engine."""

    async def start(self, dispatch: Dispatch) -> Steered | Failed:
        """Start an attempt."""
        ...


@pytest.fixture(params=[Engine.FFMPEG, Engine.GSTREAMER])
def kind(request: pytest.FixtureRequest) -> Engine:
    """Which engine the test runs on."""
    return Engine(request.param)


@pytest.fixture
def engine(kind: Engine, tmp_path: Path) -> AnyEngine:
    """The engine under test, with its scratch files under the test's directory."""
    if kind is Engine.FFMPEG:
        return FfmpegEngine(EngineSettings(ffmpeg=FFMPEG, cores=2, work_dir=str(tmp_path)))
    return gst_engine(tmp_path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3 s 4:3 320x240 clip at 25 fps with a 440 Hz tone: a real file input."""
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    argv = [FFMPEG, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "3",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", str(path)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603
    return path


def dispatch(kind: Engine, **fields: object) -> Dispatch:
    """A 1 s 480p H.264 job on ``kind`` from a pattern, with ``fields`` changed."""
    spec: dict[str, object] = {"scenario": "480p-h264", "input": "testsrc2", "duration_s": 1.0}
    spec.update(fields, engine=kind)
    return Dispatch(job="j1", attempt=1, spec=JobSpec(**spec), budget_s=60, after_seq=1, at=0)  # type: ignore[arg-type]


async def run(engine: AnyEngine, kind: Engine, **fields: object) -> Ending:
    """Start a job and wait for its end; a refusal at start (bad input found early) is its end."""
    execution = await engine.start(dispatch(kind, **fields))
    if isinstance(execution, Failed):
        return execution
    return await execution.wait()


async def started(engine: AnyEngine, kind: Engine, **fields: object) -> Steered:
    """Start a job and wait until it reports encoded frames."""
    execution = await engine.start(dispatch(kind, **fields))
    assert not isinstance(execution, Failed), execution

    async def encoding() -> bool:
        return execution.progress().frames > 0

    await wait_until(encoding, "the first encoded frames")
    return execution


def done(ending: Ending) -> Done:
    """The ending, which must be a success."""
    assert isinstance(ending, Done), ending
    return ending


async def test_pattern_encodes_the_jobs_frames_into_a_probed_file(
    engine: AnyEngine, kind: Engine, tmp_path: Path
) -> None:
    """1 s at 30 fps is 30 H.264 frames at 854x480, and the results say so."""
    output = tmp_path / "out.mp4"
    results = done(await run(engine, kind, output=str(output))).results
    media = probe(output)
    assert (media.video_codec, media.width, media.height) == ("h264", 854, 480)
    assert media.frames == results.frames == 30
    assert media.duration_s == pytest.approx(1.0, abs=0.1)
    assert results.output_bytes == output.stat().st_size
    assert results.cpu_s is not None
    assert results.cpu_s > 0
    assert results.wall_s > 0


async def test_file_input_is_cut_at_the_duration_with_its_audio(
    engine: AnyEngine, kind: Engine, tmp_path: Path, clip: Path
) -> None:
    """The first second of a 3 s clip, rescaled to 30 fps at 480p, keeps its audio as AAC."""
    output = tmp_path / "cut.mp4"
    results = done(await run(engine, kind, input=str(clip), output=str(output))).results
    media = probe(output)
    assert media.frames == results.frames == 30
    assert media.audio_codec == "aac"
    assert media.audio.span_s == pytest.approx(1.0, abs=0.1)
    assert media.duration_s == pytest.approx(1.0, abs=0.1)
    assert (media.width, media.height) == (854, 480)


async def test_matroska_and_mpegts_outputs_hold_the_stream(
    engine: AnyEngine, kind: Engine, tmp_path: Path
) -> None:
    """The container follows the file's extension."""
    for name, container in (("a.mkv", "matroska"), ("a.ts", "mpegts")):
        output = tmp_path / name
        done(await run(engine, kind, output=str(output)))
        media = probe(output)
        assert container in media.container
        assert media.frames == 30


async def test_missing_input_is_a_user_error(
    engine: AnyEngine, kind: Engine, tmp_path: Path
) -> None:
    """An input file that is not there fails before any process starts, never retried."""
    failed = await engine.start(dispatch(kind, input=str(tmp_path / "missing.mp4")))
    assert isinstance(failed, Failed)
    assert failed.reason is FailureReason.USER_ERROR
    assert "missing.mp4" in failed.message


async def test_undecodable_input_is_a_user_error(
    engine: AnyEngine, kind: Engine, tmp_path: Path
) -> None:
    """A file that is not media is the job's fault, with the engine's reason."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 400)
    ending = await run(engine, kind, input=str(junk), output=str(tmp_path / "o.mp4"))
    assert isinstance(ending, Failed), ending
    assert ending.reason is FailureReason.USER_ERROR


async def test_unreachable_destination_is_a_runtime_error(engine: AnyEngine, kind: Engine) -> None:
    """Nobody listening at the RTMP address: retried, with the engine's reason."""
    # The port is held, bound but not listening, so a connection to it is refused and no
    # other process (a server another test starts) can take it meanwhile: a free port that
    # someone else then answered on kept gst-launch's RTMP handshake waiting for ever.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        url = f"rtmp://127.0.0.1:{held.getsockname()[1]}/live/x"
        ending = await run(engine, kind, output=url)
    assert isinstance(ending, Failed), ending
    assert ending.reason is FailureReason.RUNTIME_ERROR
    assert "refused" in ending.message.lower()


async def test_a_receiver_that_never_answers_is_a_runtime_error(
    engine: AnyEngine, kind: Engine
) -> None:
    """A server accepts the RTMP connection and says nothing: the engine gives up by itself.

    Without an I/O timeout FFmpeg waited for the handshake until the scheduler's stall window.
    """
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the TCP handshake; nobody ever answers
        url = f"rtmp://127.0.0.1:{silent.getsockname()[1]}/live/x"
        ending = await run(engine, kind, output=url)
    assert isinstance(ending, Failed), ending
    assert ending.reason is FailureReason.RUNTIME_ERROR
    assert "timed out" in ending.message.lower()


async def in_state(process: psutil.Process, stopped: bool) -> None:
    """Wait until the kernel shows the process stopped (or not): a signal lands asynchronously."""

    async def there() -> bool:
        return (process.status() == psutil.STATUS_STOPPED) is stopped

    await wait_until(there, f"process {process.pid} {'stopped' if stopped else 'continued'}")


async def test_pause_stops_resume_continues_cancel_ends_the_process(
    engine: AnyEngine, kind: Engine
) -> None:
    """Pause is SIGSTOP on the process, resume SIGCONT, cancel ends it: nothing is left."""
    execution = await started(engine, kind, duration_s=3600.0)
    process = psutil.Process(execution.pid)
    assert PROCESS_NAMES[kind] in process.name()
    assert execution.pause()
    await in_state(process, stopped=True)
    assert not execution.pause()  # already paused
    assert execution.resume()
    await in_state(process, stopped=False)
    frames = execution.progress().frames

    async def advancing() -> bool:
        return execution.progress().frames > frames

    await wait_until(advancing, "frames after resume")
    await execution.cancel()
    assert isinstance(await execution.wait(), Stopped)
    assert not process.is_running()


async def test_cancel_ends_a_paused_attempt(engine: AnyEngine, kind: Engine) -> None:
    """A stopped process is continued so that it can act on the cancel."""
    execution = await started(engine, kind, duration_s=3600.0)
    process = psutil.Process(execution.pid)
    assert execution.pause()
    await in_state(process, stopped=True)
    await execution.cancel()
    assert isinstance(await execution.wait(), Stopped)
    assert not process.is_running()


async def test_rtmp_push_reaches_nginx_with_two_second_keyframes(
    engine: AnyEngine, kind: Engine, rtmp_server: RtmpServer
) -> None:
    """A 3 s pattern pushed live to nginx-rtmp is recorded whole, keyframes 2 s apart."""
    done(await run(engine, kind, duration_s=3.0, output=rtmp_server.url(kind.value)))
    media = probe(rtmp_server.wait_recorded(kind.value))
    assert (media.video_codec, media.width, media.height) == ("h264", 854, 480)
    assert media.frames == pytest.approx(90, abs=3)
    assert media.keyframe_gaps_s() == [pytest.approx(2.0, abs=0.05)]


async def test_srt_push_reaches_the_listener(
    engine: AnyEngine, kind: Engine, srt_listener: SrtListener
) -> None:
    """A 2 s pattern pushed over SRT arrives whole at the listener."""
    done(await run(engine, kind, duration_s=2.0, output=srt_listener.url))
    media = probe(srt_listener.wait_recorded())
    assert media.video_codec == "h264"
    assert media.frames == pytest.approx(60, abs=1)


def leftovers(directory: Path) -> list[str]:
    """Files in ``directory`` (an attempt's temporary name starts with a dot)."""
    return sorted(path.name for path in directory.iterdir())


async def test_the_output_appears_only_when_the_encode_succeeds(
    engine: AnyEngine, kind: Engine, tmp_path: Path
) -> None:
    """While encoding, only the attempt's temporary file exists; a cancel leaves nothing."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    execution = await started(engine, kind, duration_s=3600.0, output=str(out_dir / "a.mkv"))
    assert leftovers(out_dir) == [".a.ffrtmp-j1-1.partial.mkv"]
    await execution.cancel()
    assert isinstance(await execution.wait(), Stopped)
    assert leftovers(out_dir) == []


async def test_a_killed_encoder_leaves_nothing(
    engine: AnyEngine, kind: Engine, tmp_path: Path
) -> None:
    """The engine's process killed mid-encode: runtime_error, no file of either name."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    execution = await started(engine, kind, duration_s=3600.0, output=str(out_dir / "a.mp4"))
    psutil.Process(execution.pid).kill()
    ending = await execution.wait()
    assert isinstance(ending, Failed), ending
    assert ending.reason is FailureReason.RUNTIME_ERROR
    assert leftovers(out_dir) == []


async def test_an_existing_destination_is_kept_unless_overwrite(
    engine: AnyEngine, kind: Engine, tmp_path: Path
) -> None:
    """Without overwrite the job is refused and the file keeps its bytes; with it, replaced."""
    out = tmp_path / "a.mp4"
    out.write_bytes(b"precious")
    refused = await run(engine, kind, output=str(out))
    assert isinstance(refused, Failed), refused
    assert refused.reason is FailureReason.USER_ERROR
    assert out.read_bytes() == b"precious"
    replaced = await run(engine, kind, output=str(out), overwrite=True)
    assert isinstance(replaced, Done), replaced
    assert probe(out).frames == 30


async def test_a_paused_live_stream_resumes_with_every_frame_in_place(
    engine: AnyEngine, kind: Engine, rtmp_server: RtmpServer
) -> None:
    """Paused 2 s mid-stream, a 5 s push arrives whole: no hole, keyframes still 2 s apart."""
    stream = f"paused-{kind.value}"
    execution = await started(engine, kind, duration_s=5.0, output=rtmp_server.url(stream))

    async def second_in() -> bool:
        return execution.progress().frames >= 30

    await wait_until(second_in, "a second of the stream")
    process = psutil.Process(execution.pid)
    assert execution.pause()
    await in_state(process, stopped=True)
    held = execution.progress().frames
    await asyncio.sleep(2.0)  # the pause itself, part of the scenario (nothing waits on it)
    assert execution.progress().frames == held
    assert execution.resume()
    done(await execution.wait())
    media = probe(rtmp_server.wait_recorded(stream))
    assert media.frames == pytest.approx(150, abs=3)
    assert media.keyframe_gaps_s() == [pytest.approx(2.0, abs=0.05)] * 2
