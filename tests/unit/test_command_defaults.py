"""Outputs right by default: tags, faststart, aspect, rate caps, audio, pacing, keyframes."""

from __future__ import annotations

import pytest

from agent.command import Machine, audio_args, build, video_filter
from events.scenarios import scenario
from events.spec import JobSpec

FFMPEG = "/usr/bin/ffmpeg"


def argv_of(scen: str = "480p-h264", **fields: object) -> tuple[str, ...]:
    """The argv for a spec of scenario ``scen`` with ``fields``."""
    spec = JobSpec(**{"scenario": scen, **fields})  # type: ignore[arg-type]
    return build(FFMPEG, spec, scenario(scen), Machine(cores=2)).argv


def value_after(argv: tuple[str, ...], flag: str) -> str:
    """The argument that follows ``flag``."""
    return argv[argv.index(flag) + 1]


@pytest.mark.parametrize("dest", ["/o/a.mp4", "/o/a.MOV", "/o/a.m4v"])
def test_hevc_in_mp4_is_tagged_hvc1_with_faststart(dest: str) -> None:
    """HEVC in MP4/MOV carries the hvc1 tag Apple players need, and the index comes first."""
    argv = argv_of("480p-hevc", output=dest)
    assert value_after(argv, "-tag:v") == "hvc1"
    assert value_after(argv, "-movflags") == "+faststart"


@pytest.mark.parametrize("dest", ["/o/a.mkv", "/o/a.ts", "rtmp://h/app/k"])
def test_no_mp4_flags_outside_mp4(dest: str) -> None:
    """Other containers get neither the hvc1 tag nor movflags."""
    argv = argv_of("480p-hevc", output=dest)
    assert "-tag:v" not in argv
    assert "-movflags" not in argv


def test_h264_in_mp4_gets_faststart_but_no_hevc_tag() -> None:
    """H.264 in MP4 is indexed first and keeps its own tag."""
    argv = argv_of(output="/o/a.mp4")
    assert value_after(argv, "-movflags") == "+faststart"
    assert "-tag:v" not in argv


def test_aspect_ratio_is_kept_by_fitting_and_padding() -> None:
    """The scale fits inside the frame (never stretches), then pads to it with square pixels."""
    vf = video_filter(scenario("480p-h264"))
    assert "scale=854:480:force_original_aspect_ratio=decrease" in vf
    assert "pad=854:480:-1:-1" in vf
    assert "setsar=1" in vf


@pytest.mark.parametrize("scen", ["480p-h264", "480p-hevc", "720p-h264-nvenc", "720p-hevc-nvenc"])
def test_every_vbv_encoder_is_capped_at_the_scenario_bitrate(scen: str) -> None:
    """The cap (-maxrate) is the scenario's bitrate and the buffer one second of it."""
    argv = argv_of(scen)
    kbps = f"{scenario(scen).bitrate_kbps}k"
    assert (value_after(argv, "-b:v"), value_after(argv, "-maxrate")) == (kbps, kbps)
    assert value_after(argv, "-bufsize") == kbps


def test_svtav1_is_capped_by_vbr_without_overshoot() -> None:
    """SVT-AV1 ignores -maxrate outside CRF, so it runs VBR with no overshoot allowed."""
    argv = argv_of("480p-av1")
    assert value_after(argv, "-b:v") == "720k"
    assert "rc=1:overshoot-pct=0" in value_after(argv, "-svtav1-params")


@pytest.mark.parametrize(
    ("scen", "flags"),
    [
        ("480p-h264", ["-keyint_min", "60", "-sc_threshold", "0"]),
        ("480p-h264-nvenc", ["-no-scenecut", "1"]),
    ],
)
def test_live_keyframes_are_a_fixed_gop_without_scene_cuts(scen: str, flags: list[str]) -> None:
    """A live output gets an IDR exactly every two seconds: no scene-cut keyframes between."""
    argv = argv_of(scen, output="rtmp://h/app/k")
    assert value_after(argv, "-g") == "60"
    text = " ".join(argv)
    assert " ".join(flags) in text


def test_live_x265_and_svtav1_gop_in_their_parameters() -> None:
    """x265 and SVT-AV1 take the fixed GOP and no-scene-cut through their own parameters."""
    x265 = value_after(argv_of("480p-hevc", output="srt://h:1"), "-x265-params")
    assert "keyint=60:min-keyint=60:scenecut=0" in x265
    assert "scd=0" in value_after(argv_of("480p-av1", output="srt://h:1"), "-svtav1-params")


def test_files_keep_the_encoders_own_keyframe_choice() -> None:
    """A file output is not forced to a fixed GOP."""
    assert "-sc_threshold" not in argv_of(output="/o/a.mp4")


def test_live_test_pattern_carries_a_silent_audio_track() -> None:
    """A test pattern pushed live has a second, silent input encoded as AAC."""
    argv = argv_of(output="rtmp://h/app/k")
    assert argv.count("-f") >= 2
    assert any(a.startswith("anullsrc=") for a in argv)
    assert value_after(argv, "-c:a") == "aac"
    assert argv[argv.index("1:a:0") - 1 : argv.index("1:a:0") + 1] == ("-map", "1:a:0")


def test_pattern_to_a_file_or_nowhere_has_no_audio() -> None:
    """Outside live outputs a pattern has no sound track to make."""
    assert "-an" in argv_of(output="/o/a.mp4")
    assert "-an" in argv_of()


@pytest.mark.parametrize(
    ("dest", "source", "codec"),
    [
        ("/o/a.mp4", "aac", "copy"),
        ("/o/a.mp4", "pcm_s16le", "aac"),
        ("/o/a.mkv", "pcm_s16le", "copy"),
        ("/o/a.webm", "aac", "libopus"),
        ("rtmp://h/a/k", "opus", "aac"),
        ("rtmp://h/a/k", "mp3", "copy"),
        ("/o/a.mp4", None, "aac"),
    ],
)
def test_audio_copied_when_the_container_allows(dest: str, source: str | None, codec: str) -> None:
    """The source's audio is copied when the container stores its codec, else encoded."""
    spec = JobSpec(scenario="480p-h264", input="/i/in.mov", output=dest)
    args = audio_args(spec, live=dest.startswith("rtmp"), source_audio=source)
    assert value_after(tuple(args), "-c:a") == codec


@pytest.mark.parametrize(
    ("source", "paced"),
    [
        ("/media/in.mp4", True),
        ("https://cdn.example/in.mp4", True),
        ("http://cdn.example/in.mp4", True),
        ("testsrc2", True),
        ("rtmp://src/app/k", False),
        ("srt://src:9000", False),
    ],
)
def test_every_vod_input_is_paced_to_a_live_destination(source: str, paced: bool) -> None:
    """Files, patterns and http(s) VOD are read at real time for a live output; live URLs not."""
    argv = argv_of(input=source, output="rtmp://h/app/k")
    assert ("-re" in argv) is paced


def test_nothing_is_paced_to_a_file() -> None:
    """A file output is encoded as fast as the machine goes."""
    assert "-re" not in argv_of(input="https://cdn.example/in.mp4", output="/o/a.mp4")


def test_file_output_written_to_its_temporary_name() -> None:
    """With ``write_to`` the encode writes the temporary file, and metrics read that file."""
    spec = JobSpec(scenario="480p-h264", output="/o/a.mp4", quality_metrics=("psnr",))  # type: ignore[arg-type]
    plan = build(FFMPEG, spec, scenario(spec.scenario), Machine(), write_to="/o/.a.tmp.mp4")
    assert plan.argv[-1] == "/o/.a.tmp.mp4"
    assert plan.compare_with == "/o/.a.tmp.mp4"
