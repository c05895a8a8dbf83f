"""The media suite's receivers and probe work on their own: FFmpeg pushes, they record."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from fractions import Fraction
from pathlib import Path

import pytest

from agent.ffmpeg_binary import locate
from tests.mediaprobe import probe
from tests.receivers import HttpServer, RtmpServer, SrtListener


def push(output: list[str], seconds: float = 1.0) -> None:
    """A paced 160x90 test pattern with a tone, ``seconds`` long, to ``output``."""
    argv = [str(locate()), "-nostdin", "-hide_banner", "-loglevel", "error",
            "-re", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
            "-t", f"{seconds:g}", "-c:v", "libx264", "-preset", "ultrafast", "-g", "30",
            "-c:a", "aac", *output]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, check=False, timeout=60)  # noqa: S603
    assert done.returncode == 0, done.stderr.decode()[-600:]


def test_rtmp_server_records_what_is_published(rtmp_server: RtmpServer) -> None:
    """nginx-rtmp accepts a publish and records its video and audio to a closed FLV file."""
    push(["-f", "flv", rtmp_server.url("cam1")], seconds=2.0)
    media = probe(rtmp_server.wait_recorded("cam1"))
    assert media.container == "flv"
    assert (media.video_codec, media.width, media.height) == ("h264", 160, 90)
    assert media.audio_codec == "aac"
    assert media.frames == pytest.approx(60, abs=3)
    assert media.keyframe_gaps_s() == [pytest.approx(1.0, abs=0.05)]


def test_srt_listener_records_the_whole_stream(srt_listener: SrtListener) -> None:
    """The SRT listener records every frame a caller sends and exits when it closes."""
    push(["-f", "mpegts", srt_listener.url])
    media = probe(srt_listener.wait_recorded())
    assert media.video_codec == "h264"
    assert media.frames == 30
    assert media.audio_codec == "aac"


def test_http_server_serves_files_and_404s(http_server: HttpServer) -> None:
    """Files under its root are served; a missing one answers 404; every request is noted."""
    (http_server.root / "a.txt").write_text("hello")
    with urllib.request.urlopen(http_server.url("a.txt"), timeout=5) as answer:  # noqa: S310
        assert answer.read() == b"hello"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(http_server.missing_url, timeout=5)  # noqa: S310
    err.value.close()
    assert err.value.code == 404
    assert http_server.requests == [("/a.txt", 200), ("/no-such-file.mp4", 404)]


def test_probe_reads_an_mp4(tmp_path: Path) -> None:
    """The probe reports codec, tag, size, aspect, audio and box order of an MP4."""
    out = tmp_path / "a.mp4"
    push(["-movflags", "+faststart", "-vf", "setsar=1", str(out)])
    media = probe(out)
    assert (media.video_codec, media.video_tag) == ("h264", "avc1")
    assert media.display_aspect == Fraction(16, 9)
    assert media.faststart
    assert media.audio_rate == 48000
    assert media.duration_s == pytest.approx(1.0, abs=0.1)


def test_rtmp_server_runs_without_a_daemon_of_its_own(tmp_path: Path) -> None:
    """Stopping the server leaves no nginx behind (the test owns its only process)."""
    server = RtmpServer(tmp_path / "ngx").start()
    assert server.process is not None
    server.stop()
    assert server.process.poll() is not None
