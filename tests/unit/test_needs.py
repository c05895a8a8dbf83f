"""Which agents can run a job on which engine: one rule for the scheduler and the agent."""

from __future__ import annotations

import msgspec
from hypothesis import given

from agent import gst_pipeline
from agent.needs import engine_for, lacks, needs_of
from events.agent_events import Capabilities
from events.enums import Engine
from events.spec import JobSpec
from ffrtmp.scheduler.placement import why_never
from tests.strategies import agent_capabilities, engine_specs

FFMPEG_ONLY = Capabilities(hostname="ff", encoders=("libx264", "libx265"), protocols=("rtmp",))
BOTH = msgspec.structs.replace(
    FFMPEG_ONLY,
    hostname="both",
    engines=("ffmpeg", "gstreamer"),
    gst_elements=tuple(sorted(gst_pipeline.KNOWN_ELEMENTS - {"svtav1enc"})),
)
GST_X264 = msgspec.structs.replace(BOTH, hostname="gst", encoders=())  # FFmpeg without libx264


def test_gstreamer_job_is_never_placed_where_gstreamer_is_absent() -> None:
    """An FFmpeg-only fleet rejects a GStreamer job, naming the engine."""
    reason = why_never(needs_of(JobSpec(scenario="720p-h264", engine=Engine.GSTREAMER)),
                       [FFMPEG_ONLY])  # fmt: skip
    assert reason is not None
    assert "engine gstreamer" in reason


def test_gstreamer_job_needing_a_missing_element_is_rejected_naming_it() -> None:
    """An AV1 job on GStreamer without svtav1enc names the element no agent has."""
    needs = needs_of(JobSpec(scenario="720p-av1", engine=Engine.GSTREAMER, output="/o/a.mkv"))
    reason = why_never(needs, [BOTH])
    assert reason is not None
    assert "GStreamer element svtav1enc" in reason
    assert (
        why_never(needs_of(JobSpec(scenario="720p-h264", engine=Engine.GSTREAMER)), [BOTH]) is None
    )


def test_auto_prefers_ffmpeg_and_falls_back_to_gstreamer() -> None:
    """Auto runs on FFmpeg where it can; an agent whose FFmpeg lacks the encoder uses GStreamer."""
    needs = needs_of(JobSpec(scenario="720p-h264", engine=Engine.AUTO, output="/o/a.mp4"))
    assert engine_for(needs, BOTH) is Engine.FFMPEG
    assert engine_for(needs, GST_X264) is Engine.GSTREAMER
    assert engine_for(needs, FFMPEG_ONLY) is Engine.FFMPEG
    assert lacks(needs, GST_X264) == []


def test_auto_that_no_engine_can_run_says_what_each_lacks() -> None:
    """An auto job nothing can run names FFmpeg's gap and GStreamer's."""
    needs = needs_of(JobSpec(scenario="720p-av1", engine=Engine.AUTO, output="/o/a.mkv"))
    (gap,) = lacks(needs, GST_X264)
    assert gap == ("for FFmpeg encoder libsvtav1; for GStreamer GStreamer element svtav1enc")
    assert engine_for(needs, GST_X264) is None


def test_gstreamer_nvenc_needs_a_proven_gpu_too() -> None:
    """nvh264enc listed without a GPU whose NVENC was proven is not enough."""
    needs = needs_of(JobSpec(scenario="720p-h264-nvenc", engine=Engine.GSTREAMER))
    with_element = msgspec.structs.replace(BOTH, gst_elements=(*BOTH.gst_elements, "nvh264enc"))
    assert "an NVIDIA GPU with h264_nvenc" in lacks(needs, with_element)


@given(engine_specs, agent_capabilities)
def test_the_agent_runs_exactly_what_placement_sends_it(spec: JobSpec, caps: Capabilities) -> None:
    """An agent lacks nothing for a job iff it has an engine to run it with, of the kind asked."""
    needs = needs_of(spec)
    chosen = engine_for(needs, caps)
    assert (chosen is not None) == (not lacks(needs, caps))
    if chosen is not None and spec.engine is not Engine.AUTO:
        assert chosen == spec.engine
