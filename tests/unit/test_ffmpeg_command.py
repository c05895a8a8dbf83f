"""The FFmpeg argv built from spec, scenario and machine: inputs, outputs, encoder, preset."""

from __future__ import annotations

import pytest

from agent.command import Machine, build, choose_preset, pattern_source
from events.enums import QualityMetric
from events.scenarios import scenario
from events.spec import JobSpec

FFMPEG = "/usr/bin/ffmpeg"


def argv_of(machine: Machine | None = None, **fields: object) -> tuple[str, ...]:
    """The argv for a spec with ``fields`` on a two-core machine."""
    spec = JobSpec(**{"scenario": "1080p-h264", **fields})  # type: ignore[arg-type]
    return build(FFMPEG, spec, scenario(spec.scenario), machine or Machine(cores=2)).argv


def value_after(argv: tuple[str, ...], flag: str) -> str:
    """The argument that follows ``flag``."""
    return argv[argv.index(flag) + 1]


def test_pattern_input_at_the_scenario_size_and_rate() -> None:
    """A bare pattern name is generated at the scenario's resolution and frame rate."""
    argv = argv_of(input="testsrc2", duration_s=5)
    assert value_after(argv, "-f") == "lavfi"
    assert value_after(argv, "-i") == "testsrc2=size=1920x1080:rate=30"
    assert value_after(argv, "-t") == "5"
    assert value_after(argv, "-vf").endswith(",fps=30,format=yuv420p")


def test_pattern_with_options_is_kept_as_given() -> None:
    """A pattern that names its own options is used verbatim and scaled to the scenario."""
    assert pattern_source("testsrc2=size=160x90:rate=30", scenario("720p-h264")) == (
        "testsrc2=size=160x90:rate=30"
    )


def test_file_and_url_inputs() -> None:
    """Files and URLs are opened with -i; their audio is kept when there is an output."""
    argv = argv_of(input="/media/in.mp4", output="/media/out.mp4")
    assert value_after(argv, "-i") == "/media/in.mp4"
    assert "0:a:0?" in argv
    assert argv[-1] == "/media/out.mp4"
    assert value_after(argv_of(input="https://example.com/a.m3u8"), "-i") == (
        "https://example.com/a.m3u8"
    )


@pytest.mark.parametrize(
    ("output", "muxer"),
    [("rtmp://live.example/app/key", "flv"), ("srt://host:9000?mode=caller", "mpegts")],
)
def test_live_outputs_are_paced_with_their_muxer(output: str, muxer: str) -> None:
    """RTMP goes out as FLV and SRT as MPEG-TS, paced to real time with a 2 s GOP."""
    argv = argv_of(output=output)
    assert argv[-3:-1] == ("-f", muxer)
    assert argv[-1].startswith(output)
    assert "-re" in argv
    assert value_after(argv, "-g") == "60"


def test_an_rtmp_output_gives_up_when_the_receiver_stops_answering() -> None:
    """RTMP alone carries an I/O timeout (microseconds): a silent receiver fails in seconds."""
    assert value_after(argv_of(output="rtmp://live.example/app/key"), "-rw_timeout") == "10000000"
    assert "-rw_timeout" not in argv_of(output="srt://host:9000?mode=caller")
    assert "-rw_timeout" not in argv_of(output="/out/a.mp4")


def test_null_output_for_benchmarks() -> None:
    """Output none discards the stream through the null muxer, unpaced, without audio."""
    argv = argv_of()
    assert argv[-3:] == ("-f", "null", "-")
    assert "-re" not in argv
    assert "0:a:0?" not in argv


def test_progress_on_stdout() -> None:
    """Progress blocks go to stdout and the periodic stats line is off."""
    argv = argv_of()
    assert value_after(argv, "-progress") == "pipe:1"
    assert "-nostats" in argv
    assert "-nostdin" in argv


def test_encoder_bitrate_and_preset() -> None:
    """The scenario's encoder and bitrate, and the job's preset when it names one."""
    argv = argv_of(preset="slow")
    assert value_after(argv, "-c:v") == "libx264"
    assert value_after(argv, "-b:v") == "6000k"
    assert value_after(argv, "-maxrate") == "6000k"
    assert value_after(argv, "-preset") == "slow"


def test_nvenc_runs_on_the_assigned_gpu() -> None:
    """An NVENC scenario names the GPU the scheduler assigned."""
    spec = JobSpec(scenario="4K-nvenc")
    argv = build(FFMPEG, spec, scenario(spec.scenario), Machine(cores=8), gpu=1).argv
    assert value_after(argv, "-c:v") == "h264_nvenc"
    assert value_after(argv, "-gpu") == "1"
    assert value_after(argv, "-preset") == "p4"


@pytest.mark.parametrize(
    ("encoder", "cores", "preset"),
    [
        ("libx264", 2, "veryfast"),
        ("libx264", 8, "fast"),
        ("libx264", 64, "medium"),
        ("libx265", 4, "veryfast"),
        ("libsvtav1", 2, "12"),
        ("libsvtav1", 32, "8"),
        ("h264_nvenc", 2, "p4"),
        ("mpeg4", 2, None),
    ],
)
def test_preset_chosen_for_the_machine(encoder: str, cores: int, preset: str | None) -> None:
    """Few cores get a faster preset so the encoder keeps up."""
    assert choose_preset(encoder, cores) == preset


def test_machine_preset_used_when_the_job_leaves_it_open() -> None:
    """spec.preset None lets the machine decide."""
    assert value_after(argv_of(machine=Machine(cores=32)), "-preset") == "medium"


def test_quality_copy_replaces_the_null_output() -> None:
    """Metrics on an output-less job write the encode to the local copy the second pass reads."""
    spec = JobSpec(scenario="720p-h264", quality_metrics=(QualityMetric.VMAF,))
    plan = build(FFMPEG, spec, scenario(spec.scenario), Machine(), quality_copy="/work/q.mkv")
    assert plan.argv[-3:] == ("-f", "matroska", "/work/q.mkv")
    assert plan.compare_with == "/work/q.mkv"


def test_quality_on_a_live_output_tees_one_encode() -> None:
    """A live output with metrics is encoded once and teed to the receiver and the copy."""
    spec = JobSpec(
        scenario="720p-h264", output="rtmp://h/app/k", quality_metrics=(QualityMetric.PSNR,)
    )
    plan = build(FFMPEG, spec, scenario(spec.scenario), Machine(), quality_copy="/work/q.mkv")
    assert plan.argv[-3:] == (
        "-f",
        "tee",
        "[f=flv:onfail=abort]rtmp://h/app/k|[f=matroska]/work/q.mkv",
    )
    assert plan.argv.count("-c:v") == 1
    assert plan.live


def test_quality_on_a_file_output_compares_the_file() -> None:
    """A file output is itself what the quality pass reads."""
    spec = JobSpec(scenario="720p-h264", output="/o/x.mp4", quality_metrics=(QualityMetric.SSIM,))
    plan = build(FFMPEG, spec, scenario(spec.scenario), Machine(), quality_copy="/work/q.mkv")
    assert plan.compare_with == "/o/x.mp4"
    assert plan.argv[-1] == "/o/x.mp4"


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        ("srt://h:9000", "srt://h:9000?linger=2"),
        ("srt://h:9000?mode=caller", "srt://h:9000?mode=caller&linger=2"),
        ("srt://h:9000?linger=9", "srt://h:9000?linger=9"),
    ],
)
def test_srt_lingers_so_the_end_arrives(url: str, sent: str) -> None:
    """SRT outputs linger on close unless the URL says otherwise."""
    assert argv_of(output=url)[-1] == sent
