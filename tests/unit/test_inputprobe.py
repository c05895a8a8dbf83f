"""An input opened once: its audio codec and its length, read from ``ffmpeg -i``'s header."""

from __future__ import annotations

from agent.inputheader import InputHeader, input_header
from agent.inputprobe import InputInfo, parse

OPENED = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from '/in/a.mp4':
  Metadata:
    major_brand     : isom
  Duration: 00:01:06.50, start: 0.000000, bitrate: 938 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p, 640x480, 25 fps
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, mono, fltp, 69 kb/s
At least one output file must be specified
"""
LIVE = """Input #0, flv, from 'rtmp://h/live/k':
  Duration: N/A, start: 0.000000, bitrate: N/A
  Stream #0:0: Video: h264 (High), yuv420p(progressive), 854x480, 30 fps
"""


def test_audio_and_length_of_a_file() -> None:
    """A file with audio: its codec and its duration in seconds."""
    assert parse(OPENED) == InputInfo(audio_codec="aac", duration_s=66.5)


def test_a_live_source_has_no_length() -> None:
    """``Duration: N/A`` is no length; no audio stream is no codec."""
    assert parse(LIVE) == InputInfo(audio_codec=None, duration_s=None)


def test_an_input_that_did_not_open_is_none() -> None:
    """Without FFmpeg's input header there is nothing to read."""
    assert parse("/in/a.mp4: No such file or directory\n") is None


ENCODING = """Input #0, mpegts, from '/in/b.ts':
  Duration: 00:00:09.00, start: 1.400000, bitrate: 300 kb/s
  Stream #0:0[0x100]: Video: h264 (High) ([27][0][0][0] / 0x001B), yuv420p, 160x90, 30 fps
  Stream #0:1[0x101](eng): Audio: mp3 ([3][0][0][0] / 0x0003), 44100 Hz, stereo, fltp
Stream mapping:
  Stream #0:0 -> #0:0 (h264 (native) -> h264 (libx264))
Output #0, mp4, to '/out/b.mp4':
  Duration: 00:00:01.00
  Stream #0:0: Audio: opus
"""


def test_the_probe_and_the_encode_read_one_header_alike() -> None:
    """The probe reads the same input header the encode reads, never the output's lines."""
    assert input_header(ENCODING) == InputHeader(duration_s=9.0, video=1, audio=1)
    assert parse(ENCODING) == InputInfo(audio_codec="mp3", duration_s=9.0)
