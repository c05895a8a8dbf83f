"""Hypothesis strategies for ffrtmp's messages, in one place."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from hypothesis import strategies as st

from events.agent_events import AgentEvent, Capabilities, GpuInfo
from events.codec import CURRENT_VERSIONS
from events.commands import OperatorCommand
from events.enums import Engine, Priority, QualityMetric, Queue
from events.job_events import JobEvent
from events.spec import JobSpec
from events.work import Heartbeat, WorkMessage

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ident = st.text(alphabet="abcdefghjkmnpqrstvwxyz0123456789", min_size=1, max_size=12)
times = st.floats(min_value=1.7e9, max_value=2.0e9, allow_nan=False)

specs = st.builds(
    JobSpec,
    scenario=st.sampled_from(["1080p-h264", "720p-hevc", "4K60-h264", "480p-av1"]),
    duration_s=st.floats(min_value=0.5, max_value=600),
    queue=st.sampled_from(list(Queue)),
    priority=st.sampled_from(list(Priority)),
    max_retries=st.integers(min_value=0, max_value=5),
    approval_required=st.booleans(),
    quality_metrics=st.lists(st.sampled_from(list(QualityMetric)), unique=True).map(tuple),
    labels=st.dictionaries(st.sampled_from(["team", "tier", "site"]), ident, max_size=3),
)

# Jobs for either engine, and agents with any mix of FFmpeg encoders and GStreamer elements.
engine_specs = st.builds(
    JobSpec,
    scenario=st.sampled_from(["480p-h264", "720p-hevc", "480p-av1", "1080p-h264-nvenc"]),
    engine=st.sampled_from(list(Engine)),
    input=st.sampled_from(["testsrc2", "smptebars=size=64x64", "/in.mp4", "http://h/a.mp4"]),
    output=st.sampled_from(["none", "/o/a.mp4", "/o/a.mkv", "/o/a.avi", "rtmp://h/live/k"]),
    quality_metrics=st.lists(st.sampled_from(list(QualityMetric)), max_size=1).map(tuple),
)
_GST_ELEMENTS = sorted(
    {"videotestsrc", "x264enc", "x265enc", "svtav1enc", "nvh264enc", "h264parse", "h265parse",
     "av1parse", "mp4mux", "matroskamux", "flvmux", "filesink", "fakesink", "rtmp2sink",
     "filesrc", "decodebin", "uridecodebin", "souphttpsrc", "avwait", "audiotestsrc",
     "audioconvert", "audioresample", "aacparse", "avenc_aac", "videoconvert", "videoscale",
     "videorate", "identity", "queue"}
)  # fmt: skip
agent_capabilities = st.builds(
    Capabilities,
    engines=st.lists(st.sampled_from(["ffmpeg", "gstreamer"]), unique=True).map(tuple),
    encoders=st.lists(st.sampled_from(["libx264", "libx265", "libsvtav1"]), unique=True).map(tuple),
    filters=st.lists(st.sampled_from(["psnr", "ssim", "libvmaf"]), unique=True).map(tuple),
    protocols=st.lists(st.sampled_from(["http", "rtmp"]), unique=True).map(tuple),
    gpus=st.lists(
        st.builds(
            GpuInfo,
            index=st.just(0),
            name=st.just("L4"),
            memory_bytes=st.just(2**34),
            nvenc_sessions=st.just(4),
            encoders=st.just(("h264_nvenc",)),
        ),
        max_size=1,
    ).map(tuple),
    gst_elements=st.lists(st.sampled_from(_GST_ELEMENTS), unique=True).map(tuple)
    | st.just(tuple(_GST_ELEMENTS)),
)


def _with_types() -> None:
    """Keep generated numbers inside what JSON and msgspec round-trip exactly."""
    st.register_type_strategy(float, finite)
    st.register_type_strategy(int, int64)
    st.register_type_strategy(JobSpec, specs)


_with_types()


def _built(cls: type[Any]) -> st.SearchStrategy[Any]:
    version = CURRENT_VERSIONS.get(cls.__name__, 1)
    return st.builds(cls, v=st.just(version))


events: st.SearchStrategy[Any] = st.one_of(
    [_built(cls) for cls in (*get_args(JobEvent), *get_args(AgentEvent))]
)
agent_events: st.SearchStrategy[Any] = st.one_of([_built(cls) for cls in get_args(AgentEvent)])
commands: st.SearchStrategy[Any] = st.one_of([_built(cls) for cls in get_args(OperatorCommand)])
work_messages: st.SearchStrategy[Any] = st.one_of([_built(cls) for cls in get_args(WorkMessage)])
heartbeats: st.SearchStrategy[Heartbeat] = _built(Heartbeat)


def as_json(message: msgspec.Struct) -> bytes:
    """The bytes a message has on the wire."""
    return msgspec.json.encode(message)
