"""The GStreamer pipeline and the elements a job needs come from one set of tables."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent import gst_pipeline
from agent.gst_pipeline import Machine, build, lacks, requirements
from events.enums import Engine, QualityMetric
from events.spec import JobSpec
from tests.strategies import engine_specs

ALL = gst_pipeline.KNOWN_ELEMENTS
MACHINE = Machine(elements=ALL, preset="veryfast")


def spec(**fields: object) -> JobSpec:
    """A GStreamer job of 1 s at 480p H.264 from a pattern, with ``fields`` changed."""
    base: dict[str, object] = {"scenario": "480p-h264", "engine": Engine.GSTREAMER}
    base.update(fields, duration_s=fields.get("duration_s", 1.0))
    return JobSpec(**base)  # type: ignore[arg-type]


def names(job: JobSpec) -> set[str]:
    """Every element some requirement of the job names."""
    return {name for need in requirements(job) for name in need.any_of}


def pipeline(job: JobSpec, *, audio: bool = False) -> str:
    """The launch line as one string."""
    return " ".join(build("gst-launch-1.0", job, MACHINE, audio_in_input=audio).argv)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"output": "/o/a.mp4"}, {"videotestsrc", "x264enc", "h264parse", "mp4mux", "filesink"}),
        ({"scenario": "480p-hevc", "output": "/o/a.mkv"}, {"x265enc", "h265parse", "matroskamux"}),
        ({"output": "rtmp://h/live/k"}, {"flvmux", "rtmp2sink", "audiotestsrc", "aacparse"}),
        ({"output": "srt://h:9000"}, {"mpegtsmux", "srtsink", "audiotestsrc"}),
        ({"input": "/in.mp4", "output": "/o/a.ts"}, {"filesrc", "decodebin", "avwait"}),
        ({"input": "http://h/in.mp4"}, {"uridecodebin", "souphttpsrc", "fakesink"}),
        ({"scenario": "720p-h264-nvenc"}, {"nvh264enc"}),
        ({"scenario": "720p-av1"}, {"svtav1enc", "av1parse"}),
    ],
)
def test_requirements_name_each_element_the_job_uses(
    fields: dict[str, object], expected: set[str]
) -> None:
    """Encoder, parser, muxer, sink and source of the pipeline are all required."""
    assert expected <= names(spec(**fields))


def test_every_required_element_is_in_the_pipeline() -> None:
    """The pipeline uses each element its requirements name (the AAC encoder being one)."""
    job = spec(input="/in.mp4", output="/o/a.mp4")
    line = pipeline(job, audio=True)
    for need in requirements(job):
        assert any(name in line for name in need.any_of), need.phrase


def test_no_audio_path_for_a_benchmark_or_a_pattern_file() -> None:
    """A null output and a pattern written to a file need no audio elements."""
    assert "aacparse" not in names(spec(input="/in.mp4"))
    assert "audiotestsrc" not in names(spec(output="/o/a.mp4"))


@pytest.mark.parametrize(
    ("fields", "phrase"),
    [
        ({"input": "color=color=DarkOrchid"}, "the color 'DarkOrchid'"),
        ({"scenario": "480p-hevc", "output": "rtmp://h/live/k"}, "hevc in flvmux"),
        ({"output": "/o/a.avi"}, "writing .avi files"),
        ({"quality_metrics": (QualityMetric.PSNR,)}, "quality metrics"),
        ({"input": "rtsp://h/cam"}, "GStreamer element rtspsrc"),
    ],
)
def test_what_gstreamer_cannot_do_is_a_requirement_with_its_reason(
    fields: dict[str, object], phrase: str
) -> None:
    """A job the engine cannot express lacks something on every agent, and says what."""
    job = spec(**fields)
    missing = lacks(job, ALL - {"rtspsrc"})
    assert any(phrase in gap for gap in missing), missing


def test_an_agent_lacking_an_aac_encoder_is_told_so_once() -> None:
    """Any of the AAC encoders will do; lacking all of them is one phrase."""
    job = spec(output="rtmp://h/live/k")
    assert lacks(job, ALL - {"avenc_aac"}) == []
    assert lacks(job, ALL - set(gst_pipeline.AAC_ENCODERS)) == ["a GStreamer AAC encoder"]


def test_pattern_stops_after_the_jobs_frames_at_the_scenarios_frame() -> None:
    """2 s at 30 fps is 60 buffers of the pattern, scaled, rated and bordered to 854x480."""
    line = pipeline(spec(duration_s=2.0, output="/o/a.mp4"))
    assert "videotestsrc pattern=smpte num-buffers=60" in line
    assert "width=854,height=480,framerate=30/1,format=I420,pixel-aspect-ratio=1/1" in line
    assert "x264enc bitrate=1200" in line
    assert "speed-preset=veryfast" in line
    assert "mp4mux name=mux faststart=true" in line
    assert "is-live=false" in line


def test_decoded_input_is_cut_at_the_duration_with_its_audio() -> None:
    """A file passes an avwait ending at the duration on both its video and audio."""
    plan = build("gst-launch-1.0", spec(input="/in.mp4", output="/o/a.mp4", duration_s=2.5),
                 MACHINE, audio_in_input=True)  # fmt: skip
    line = " ".join(plan.argv)
    assert "end-running-time=2500000000" in line
    assert "ffrtmp_cut.vsink ffrtmp_cut.vsrc" in line
    assert "ffrtmp_cut.asink ffrtmp_cut.asrc ! avenc_aac bitrate=128000" in line
    assert (plan.cut_at_s, plan.audio, plan.live) == (2.5, True, False)


def test_audio_goes_only_where_the_input_has_some() -> None:
    """Without an audio stream in the input no pad waits for audio (it would hang the muxer)."""
    line = pipeline(spec(input="/in.mp4", output="/o/a.mp4"), audio=False)
    assert "asink" not in line
    assert "aac" not in line


def test_live_output_is_paced_with_a_silent_track_and_fixed_gop() -> None:
    """A pattern to RTMP runs live, carries silence and keyframes every 2 s without scene cuts."""
    plan = build("gst-launch-1.0", spec(output="rtmp://h/live/k"), MACHINE, audio_in_input=False)
    line = " ".join(plan.argv)
    assert plan.live
    assert "is-live=false" in line  # the sink paces (sync=true): frames keep their times
    assert "audiotestsrc wave=silence" in line
    assert "key-int-max=60 bframes=0 option-string=scenecut=0" in line
    assert (
        'flvmux name=mux streamable=true ! rtmp2sink location="rtmp://h/live/k" sync=true' in line
    )


def test_hevc_in_mp4_is_tagged_hvc1() -> None:
    """Players that need hvc1 (Apple's) get it."""
    line = pipeline(spec(scenario="480p-hevc", output="/o/a.mp4"))
    assert "h265parse ! video/x-h265,stream-format=hvc1" in line
    assert "vbv-maxrate=840:vbv-bufsize=1680" in line


def test_nvenc_runs_on_the_placed_gpu() -> None:
    """The GPU the scheduler chose is the CUDA device the encoder uses."""
    plan = build(
        "gst-launch-1.0", spec(scenario="720p-hevc-nvenc"),
        Machine(elements=ALL, gpu=1), audio_in_input=False,
    )  # fmt: skip
    assert "nvh265enc" in plan.argv
    assert "cuda-device-id=1" in plan.argv


@pytest.mark.parametrize("path", ["/o/a b.mp4", '/o/quote".mp4', "/o/back\\slash.mp4", "/o/!.mp4"])
def test_property_values_are_quoted_so_gst_launch_reads_them_back(path: str) -> None:
    """A path with spaces, quotes, backslashes or ``!`` stays one property value."""
    value = next(arg for arg in build("g", spec(output=path), MACHINE, audio_in_input=False).argv
                 if arg.startswith("location="))  # fmt: skip
    assert shlex.split(value.removeprefix("location="), posix=True) == [path]


def elements_in(argv: tuple[str, ...]) -> set[str]:
    """The element names of a launch line (not properties, caps, pad references or links)."""
    return {
        word
        for word in argv[3:]  # after gst-launch-1.0 -e -v
        if word != "!" and "=" not in word and "." not in word and "/" not in word
    }


@given(engine_specs, st.booleans())
def test_the_pipeline_uses_only_elements_its_requirements_name(job: JobSpec, audio: bool) -> None:
    """Whatever the job, every element the pipeline runs is one placement checked an agent has."""
    if any(not need.any_of for need in requirements(job)):
        return  # a job GStreamer cannot express is rejected, never built
    used = elements_in(build("gst-launch-1.0", job, MACHINE, audio_in_input=audio).argv)
    assert used <= names(job)
    assert used <= ALL


def test_pattern_options_set_the_sources_size_rate_and_length() -> None:
    """Size and rate shape the source before scaling; a shorter pattern duration wins."""
    line = pipeline(spec(input="testsrc2=size=320x240:rate=25:duration=0.5", duration_s=2.0))
    assert "num-buffers=13" in line  # 0.5 s at the pattern's 25 fps, the last frame whole
    assert "is-live=false ! video/x-raw,width=320,height=240,framerate=25/1 ! videoconvert" in line
    assert "framerate=30/1" in line  # still rated to the scenario's frame


@pytest.mark.parametrize(
    ("color", "argb"),
    [("red", "0xffff0000"), ("0x336699", "0xff336699"), ("0x33669980", "0x80336699"),
     ("Green", "0xff008000"), ("DarkOrchid", None), ("0x12345", None)],
)  # fmt: skip
def test_colors_become_videotestsrc_argb(color: str, argb: str | None) -> None:
    """FFmpeg's RRGGBB[AA] and common names become AARRGGBB; other names are refused."""
    assert gst_pipeline.argb(color) == argb


def test_a_color_source_is_solid() -> None:
    """``color=color=red`` is videotestsrc's solid colour in red; plain ``color`` is black."""
    assert "pattern=solid-color num-buffers=30 foreground-color=0xffff0000" in pipeline(
        spec(input="color=color=red")
    )
    assert "foreground-color=0xff000000" in pipeline(spec(input="color"))
