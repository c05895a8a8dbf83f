"""FFmpeg found and probed: listings parsed, a missing or broken binary refused in one line."""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import pytest

from agent.ffmpeg_binary import FfmpegUnavailable, find_ffmpeg, locate
from agent.probe import (
    is_hardware,
    parse_encoders,
    parse_filters,
    parse_protocols,
    parse_version,
    probe,
)

ENCODERS = """Encoders:
 V..... = Video
 A..... = Audio
 ------
 V....D libx264              libx264 H.264 / AVC / MPEG-4 AVC / MPEG-4 part 10 (codec h264)
 V....D h264_nvenc           NVIDIA NVENC H.264 encoder (codec h264)
 V..... libsvtav1            SVT-AV1(Scalable Video Technology for AV1) encoder (codec av1)
 A....D aac                  AAC (Advanced Audio Coding)
 S..... ass                  ASS (Advanced SubStation Alpha) subtitle
"""
FILTERS = """Filters:
  T.. = Timeline support
  .S. = Slice threading
  ------
 TS apsnr             AA->A      Measure Audio Peak Signal-to-Noise Ratio.
 .. libvmaf           VV->V      Calculate the VMAF between two video streams.
 TS psnr              VV->V      Calculate the PSNR between two video streams.
 TS ssim              VV->V      Calculate the SSIM between two video streams.
 T.. scale            V->V       Scale the input video size.
"""
PROTOCOLS = """Supported file protocols:
Input:
  file
  http
  rtmp
Output:
  file
  rtmp
  srt
"""


def test_parse_version() -> None:
    """The version word after 'ffmpeg version'; anything else is not FFmpeg."""
    assert parse_version("ffmpeg version n7.1 Copyright (c) 2000-2024") == "n7.1"
    assert parse_version("avconv version 12") == ""


def test_parse_encoders_keeps_video_encoders() -> None:
    """Video rows only, hardware ones included (they are proven later)."""
    assert parse_encoders(ENCODERS) == ("libx264", "h264_nvenc", "libsvtav1")


def test_parse_filters_keeps_the_quality_filters() -> None:
    """Only libvmaf, psnr and ssim matter for capabilities (apsnr is not psnr)."""
    assert parse_filters(FILTERS) == ("libvmaf", "psnr", "ssim")
    assert parse_filters(FILTERS.replace("libvmaf", "vmafmotion")) == ("psnr", "ssim")


def test_parse_protocols_unites_input_and_output() -> None:
    """Every protocol listed for reading or writing, once."""
    assert parse_protocols(PROTOCOLS) == ("file", "http", "rtmp", "srt")


@pytest.mark.parametrize(
    ("encoder", "hardware"),
    [("h264_nvenc", True), ("hevc_qsv", True), ("av1_vaapi", True), ("libx264", False)],
)
def test_is_hardware(encoder: str, hardware: bool) -> None:
    """Encoders that drive a device are told apart from CPU encoders."""
    assert is_hardware(encoder) is hardware


def test_probe_the_bundled_ffmpeg() -> None:
    """The FFmpeg imageio-ffmpeg ships encodes H.264, computes VMAF, and speaks RTMP and SRT."""
    info = probe(Path(imageio_ffmpeg.get_ffmpeg_exe()))
    assert info.version
    assert "libx264" in info.encoders
    assert info.filters == ("libvmaf", "psnr", "ssim")
    assert {"rtmp", "srt", "file"} <= set(info.protocols)


def test_explicit_ffmpeg_is_used() -> None:
    """--ffmpeg PATH names the binary."""
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    assert find_ffmpeg(exe) == Path(exe)


def test_missing_ffmpeg_is_refused(tmp_path: Path) -> None:
    """A path that does not exist is refused with what to do."""
    with pytest.raises(FfmpegUnavailable, match="does not exist") as caught:
        locate(str(tmp_path / "ffmpeg"))
    assert "--ffmpeg" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_binary_that_is_not_ffmpeg_is_refused(tmp_path: Path) -> None:
    """An executable that does not answer -version like FFmpeg is refused."""
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(FfmpegUnavailable, match="exited 3"):
        find_ffmpeg(str(fake))
