"""FfmpegEngine's outputs with the real FFmpeg: atomic, never overwriting, confined, right."""

from __future__ import annotations

import os
import signal
import subprocess
from fractions import Fraction
from pathlib import Path

import msgspec
import pytest

from agent.engine import Done, Failed
from agent.ffmpeg_binary import locate
from agent.ffmpeg_engine import EngineSettings, FfmpegEngine, FfmpegExecution
from events.enums import FailureReason
from events.spec import JobSpec
from events.work import Dispatch
from tests.farm import wait_until
from tests.mediaprobe import probe
from tests.receivers import HttpServer, RtmpServer, SrtListener

pytestmark = pytest.mark.anyio

PATTERN = "testsrc2=size=160x90:rate=30"
FFMPEG = str(locate())


def engine_for(tmp_path: Path, *roots: Path) -> FfmpegEngine:
    """An engine on this machine's FFmpeg, confined to ``roots`` when given."""
    roots_s = tuple(str(r) for r in roots)
    return FfmpegEngine(
        EngineSettings(ffmpeg=FFMPEG, cores=2, work_dir=str(tmp_path), media_roots=roots_s)
    )


def dispatch(**spec: object) -> Dispatch:
    """A 1 s 480p job from the tiny pattern, with ``spec`` fields changed."""
    fields: dict[str, object] = {"scenario": "480p-h264", "input": PATTERN, "duration_s": 1.0}
    fields.update(spec)
    job = msgspec.convert(fields, JobSpec)
    return Dispatch(job="j1", attempt=1, spec=job, budget_s=60, after_seq=1, at=0)


async def run(engine: FfmpegEngine, **spec: object) -> Done | Failed:
    """Start a job and wait for its end; a refusal at start is returned as it is."""
    started = await engine.start(dispatch(**spec))
    if isinstance(started, Failed):
        return started
    ending = await started.wait()
    assert isinstance(ending, Done | Failed), ending
    return ending


def names(directory: Path, start: str = "") -> list[str]:
    """The sorted names in ``directory`` that start with ``start``."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(start))


def make_clip(path: Path, size: str = "320x240", audio: str = "aac", seconds: float = 1.0) -> Path:
    """A short clip with a tone, made directly with FFmpeg."""
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast", "-c:a", audio,
            str(path)]  # fmt: skip
    subprocess.run(argv, check=True, capture_output=True, timeout=60)  # noqa: S603
    return path


async def test_a_finished_file_appears_whole_under_its_name_only(tmp_path: Path) -> None:
    """Success publishes the file; nothing else is left in the directory (no partial name)."""
    out = tmp_path / "out" / "a.mp4"
    out.parent.mkdir()
    ending = await run(engine_for(tmp_path), output=str(out))
    assert isinstance(ending, Done), ending
    assert names(out.parent) == ["a.mp4"]
    assert ending.results.output_bytes == out.stat().st_size
    media = probe(out)
    assert (media.width, media.height, media.frames) == (854, 480, 30)
    assert media.faststart


async def test_the_encode_writes_a_temporary_name_until_it_succeeds(tmp_path: Path) -> None:
    """While FFmpeg runs, the destination does not exist; only the attempt's temporary file."""
    out = tmp_path / "a.mkv"
    started = await engine_for(tmp_path).start(dispatch(output=str(out), duration_s=30.0))
    assert isinstance(started, FfmpegExecution)

    async def writing() -> bool:
        return bool(names(tmp_path, ".a.ffrtmp-j1-1.partial"))

    await wait_until(writing, "the temporary output")
    assert not out.exists()
    await started.cancel()
    assert not out.exists()
    assert names(tmp_path, ".a.") == []


async def test_a_failed_encode_leaves_nothing(tmp_path: Path) -> None:
    """FFmpeg killed mid-encode: runtime_error, no destination, no temporary file."""
    out = tmp_path / "a.mp4"
    started = await engine_for(tmp_path).start(dispatch(output=str(out), duration_s=30.0))
    assert isinstance(started, FfmpegExecution)

    async def frames() -> bool:
        return started.progress().frames > 0

    await wait_until(frames, "first progress")
    os.kill(started.pid, signal.SIGKILL)
    ending = await started.wait()
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.RUNTIME_ERROR
    assert [n for n in names(tmp_path) if n.endswith(".mp4")] == []


async def test_an_existing_destination_is_refused_before_encoding(tmp_path: Path) -> None:
    """Without overwrite the job fails user_error at once and the file keeps its content."""
    out = tmp_path / "a.mp4"
    out.write_bytes(b"precious")
    ending = await run(engine_for(tmp_path), output=str(out))
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.USER_ERROR
    assert "already exists" in ending.message
    assert out.read_bytes() == b"precious"


async def test_overwrite_replaces_the_destination(tmp_path: Path) -> None:
    """With overwrite the finished encode replaces the existing file."""
    out = tmp_path / "a.mp4"
    out.write_bytes(b"old")
    ending = await run(engine_for(tmp_path), output=str(out), overwrite=True)
    assert isinstance(ending, Done), ending
    assert probe(out).frames == 30


async def test_a_destination_that_appears_meanwhile_is_not_replaced(tmp_path: Path) -> None:
    """A file created at the destination during the encode is kept; the attempt says why."""
    out = tmp_path / "a.mkv"
    started = await engine_for(tmp_path).start(dispatch(output=str(out), duration_s=2.0))
    assert isinstance(started, FfmpegExecution)
    out.write_bytes(b"theirs")
    ending = await started.wait()
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.USER_ERROR
    assert "appeared while encoding" in ending.message
    assert out.read_bytes() == b"theirs"
    assert [n for n in names(tmp_path) if n.endswith(".mkv")] == ["a.mkv"]


async def test_media_roots_confine_inputs_and_outputs(tmp_path: Path) -> None:
    """Outside the roots (directly or through a symlink) is user_error before FFmpeg starts."""
    root, other = tmp_path / "media", tmp_path / "other"
    root.mkdir()
    other.mkdir()
    clip = make_clip(other / "in.mp4")
    (root / "link.mp4").symlink_to(clip)
    engine = engine_for(tmp_path, root)
    cases = [
        {"input": str(clip), "output": str(root / "o1.mp4")},
        {"input": str(root / "link.mp4"), "output": str(root / "o2.mp4")},
        {"output": str(other / "o3.mp4")},
        {"output": str(other / "absent" / "o4.mp4")},  # refused as outside, not as missing
    ]
    for spec in cases:
        ending = await engine.start(dispatch(**spec))
        assert isinstance(ending, Failed), spec
        assert ending.reason is FailureReason.USER_ERROR
        assert "media roots" in ending.message
    assert list(root.glob("o*")) == []
    assert list(other.glob("o*")) == []
    inside = await run(engine, input=str(make_clip(root / "ok.mp4")), output=str(root / "o.mp4"))
    assert isinstance(inside, Done), inside


async def test_a_404_input_is_a_user_error(tmp_path: Path, http_server: HttpServer) -> None:
    """An input URL answering 404 fails user_error, naming the answer, with one request."""
    ending = await run(engine_for(tmp_path), input=http_server.missing_url,
                       output=str(tmp_path / "a.mp4"))  # fmt: skip
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.USER_ERROR
    assert "404" in ending.message
    assert [status for _, status in http_server.requests] == [404]


@pytest.mark.parametrize("scheme", ["rtmp", "srt"])
async def test_an_unreachable_destination_is_a_runtime_error(tmp_path: Path, scheme: str) -> None:
    """Nothing listening: runtime_error (retried) carrying FFmpeg's reason."""
    from ffrtmp.natsd import free_port  # noqa: PLC0415 - only this test needs a port

    url = {"rtmp": "rtmp://127.0.0.1:{}/live/x", "srt": "srt://127.0.0.1:{}?mode=caller"}[scheme]
    ending = await run(engine_for(tmp_path), output=url.format(free_port()))
    assert isinstance(ending, Failed)
    assert ending.reason is FailureReason.RUNTIME_ERROR
    assert "Connection refused" in ending.message or "Input/output error" in ending.message


async def test_aspect_kept_and_audio_copied_into_mp4(tmp_path: Path) -> None:
    """A 4:3 clip in a 16:9 scenario is pillarboxed with square pixels; its AAC is copied."""
    clip = make_clip(tmp_path / "in.mkv", size="320x240")
    out = tmp_path / "a.mp4"
    started = await engine_for(tmp_path).start(dispatch(input=str(clip), output=str(out)))
    assert isinstance(started, FfmpegExecution)
    assert isinstance(await started.wait(), Done)
    assert "-c:a copy" in " ".join(started.argv)
    media = probe(out)
    assert (media.width, media.height, media.display_aspect) == (854, 480, Fraction(427, 240))
    assert media.audio_codec == "aac"


async def test_audio_the_container_cannot_take_is_encoded(tmp_path: Path) -> None:
    """PCM audio into MP4 is encoded to AAC rather than copied."""
    clip = make_clip(tmp_path / "in.mkv", audio="pcm_s16le")
    out = tmp_path / "a.mp4"
    assert isinstance(await run(engine_for(tmp_path), input=str(clip), output=str(out)), Done)
    assert probe(out).audio_codec == "aac"


async def test_hevc_mp4_is_hvc1_with_faststart(tmp_path: Path) -> None:
    """HEVC in MP4 comes out tagged hvc1 with the index before the media."""
    out = tmp_path / "a.mp4"
    assert isinstance(await run(engine_for(tmp_path), scenario="480p-hevc", output=str(out)), Done)
    media = probe(out)
    assert (media.video_codec, media.video_tag) == ("hevc", "hvc1")
    assert media.faststart


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scen", ["480p-h264", "480p-hevc", "480p-av1"])
async def test_every_encoder_lands_within_5_percent_of_the_bitrate(
    tmp_path: Path, scen: str
) -> None:
    """A 10 s encode's video bitrate is within ±5 % of the scenario's (SVT-AV1 was +15 %)."""
    out = tmp_path / "a.mkv"
    ending = await run(engine_for(tmp_path), scenario=scen, input="testsrc2", output=str(out),
                       duration_s=10.0)  # fmt: skip
    assert isinstance(ending, Done), ending
    from events.scenarios import scenario  # noqa: PLC0415

    target = scenario(scen).bitrate_kbps
    assert probe(out).video_kbps == pytest.approx(target, rel=0.05)


async def test_live_pattern_to_nginx_has_audio_and_two_second_keyframes(
    tmp_path: Path, rtmp_server: RtmpServer
) -> None:
    """A test pattern pushed to nginx-rtmp arrives with a silent AAC track and IDRs every 2 s."""
    ending = await run(engine_for(tmp_path), output=rtmp_server.url("p"), duration_s=4.0)
    assert isinstance(ending, Done), ending
    media = probe(rtmp_server.wait_recorded("p"))
    assert (media.video_codec, media.width, media.height) == ("h264", 854, 480)
    assert media.audio_codec == "aac"
    assert media.frames == pytest.approx(120, abs=3)
    assert media.keyframe_gaps_s() == [pytest.approx(2.0, abs=0.05)]


async def test_vod_url_to_srt_is_paced(
    tmp_path: Path, http_server: HttpServer, srt_listener: SrtListener
) -> None:
    """An http VOD pushed to SRT is read at real time (-re), not burst, and arrives whole."""
    make_clip(http_server.root / "vod.mp4", seconds=3.0)
    ending = await run(engine_for(tmp_path), input=http_server.url("vod.mp4"),
                       output=srt_listener.url, duration_s=3.0)  # fmt: skip
    assert isinstance(ending, Done), ending
    assert ending.results.speed is not None
    assert ending.results.speed < 1.2  # unpaced, this 3 s clip went at 2-3x or more
    media = probe(srt_listener.wait_recorded())
    assert media.frames == pytest.approx(90, abs=3)
    assert media.audio_codec == "aac"


async def test_the_log_starts_with_the_exact_command_line(tmp_path: Path) -> None:
    """The attempt's log leads with its argv, shell-quoted, as jobs status/logs show it."""
    started = await engine_for(tmp_path).start(dispatch(output=str(tmp_path / "a b.mp4")))
    assert isinstance(started, FfmpegExecution)
    await started.wait()
    first = started.log_tail().split(b"\n", 1)[0].decode()
    assert first.startswith(f"$ {FFMPEG} -nostdin")
    assert "'" in first  # the space in the temporary name is quoted


def attempt(number: int, spec: JobSpec) -> Dispatch:
    """Attempt ``number`` of job j1."""
    return Dispatch(job="j1", attempt=number, spec=spec, budget_s=60, after_seq=number, at=0)


async def test_a_later_attempt_takes_the_name_from_an_earlier_one_still_running(
    tmp_path: Path,
) -> None:
    """Attempt 2 removes attempt 1's file; attempt 1 (a zombie) then cannot publish; 2 does."""
    out = tmp_path / "a.mkv"
    engine = engine_for(tmp_path)
    spec = msgspec.convert(
        {"scenario": "480p-h264", "input": PATTERN, "output": str(out), "duration_s": 1.0}, JobSpec
    )
    long = msgspec.structs.replace(spec, duration_s=30.0)
    first = await engine.start(attempt(1, long))
    assert isinstance(first, FfmpegExecution)

    async def writing() -> bool:
        return bool(names(tmp_path, ".a.ffrtmp-j1-1"))

    await wait_until(writing, "attempt 1's temporary file")
    second = await engine.start(attempt(2, spec))
    assert isinstance(second, FfmpegExecution)
    assert names(tmp_path, ".a.ffrtmp-j1-1") == []
    assert isinstance(await second.wait(), Done)
    assert probe(out).frames == 30
    zombie = await first.wait()
    assert isinstance(zombie, Failed), zombie
    assert probe(out).frames == 30  # still attempt 2's file
    assert names(tmp_path, ".a.") == []
