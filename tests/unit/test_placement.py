"""Placement: capability rejection with a readable reason, GPU-aware and CPU-preferring choice."""

from __future__ import annotations

from events.agent_events import Capabilities, GpuInfo
from events.enums import QualityMetric
from events.spec import JobSpec
from ffrtmp.scheduler.placement import (
    AgentRoom,
    GpuRoom,
    Placement,
    Rooms,
    choose,
    needs_of,
    why_never,
)

GIB = 1024**3
CPU = Capabilities(
    hostname="cpu-1",
    encoders=("libx264", "libx265", "libsvtav1"),
    filters=("psnr", "ssim", "libvmaf"),
    protocols=("rtmp", "srt", "http", "https"),
)
GPU = Capabilities(
    hostname="gpu-1",
    encoders=("libx264", "libx265", "h264_nvenc", "hevc_nvenc"),
    filters=("psnr", "ssim"),
    protocols=("rtmp",),
    gpus=(
        GpuInfo(
            index=0,
            name="RTX 4090",
            memory_bytes=24 * GIB,
            nvenc_sessions=8,
            encoders=("h264_nvenc", "hevc_nvenc"),
        ),
    ),
)


def _gpu_room(
    agent: str, sessions_free: int, memory_free: int = 8 * GIB, slots: int = 2
) -> AgentRoom:
    load = GpuRoom(
        index=0,
        encoders=("h264_nvenc", "hevc_nvenc"),
        sessions=sessions_free,
        memory_bytes=memory_free,
    )
    return AgentRoom(agent=agent, caps=GPU, slots=slots, gpus=(load,))


def test_needs_follow_scenario_metrics_and_urls() -> None:
    """A VMAF job streaming to RTMP needs the scenario's encoder, libvmaf and rtmp."""
    spec = JobSpec(
        scenario="4K-nvenc", output="rtmp://127.0.0.1/live/a", quality_metrics=(QualityMetric.VMAF,)
    )
    needs = needs_of(spec)
    assert (needs.encoder, needs.gpu, needs.filters, needs.protocols) == (
        "h264_nvenc",
        True,
        ("libvmaf",),
        ("rtmp",),
    )


def test_gpu_job_on_a_cpu_only_fleet_is_rejected_with_a_sentence() -> None:
    """With only CPU agents, an NVENC job is a capability mismatch that says what is missing."""
    reason = why_never(needs_of(JobSpec(scenario="4K-nvenc")), [CPU, CPU])
    assert reason is not None
    assert "none of the 2 registered agents" in reason
    assert "an NVIDIA GPU with h264_nvenc" in reason


def test_no_agents_yet_means_wait_not_reject() -> None:
    """Before any agent registers, nothing is rejected."""
    assert why_never(needs_of(JobSpec(scenario="4K-nvenc")), []) is None


def test_a_job_some_agent_can_run_is_not_rejected() -> None:
    """One capable agent in the fleet is enough."""
    assert why_never(needs_of(JobSpec(scenario="1080p-hevc-nvenc")), [CPU, GPU]) is None


def test_missing_filter_is_named() -> None:
    """A VMAF job on agents without libvmaf names the filter."""
    spec = JobSpec(scenario="4K-nvenc", quality_metrics=(QualityMetric.VMAF,))
    reason = why_never(needs_of(spec), [GPU])
    assert reason is not None
    assert "filter libvmaf" in reason


def test_cpu_job_prefers_an_agent_without_a_gpu() -> None:
    """While a CPU-only agent has room, CPU work goes there, even if it is busier."""
    rooms = [_gpu_room("gpu-1", 4), AgentRoom(agent="cpu-1", caps=CPU, slots=1, load=0.9)]
    assert choose(needs_of(JobSpec(scenario="1080p-h264")), rooms) == Placement(agent="cpu-1")


def test_cpu_job_uses_a_gpu_agent_when_cpu_agents_are_full() -> None:
    """With no CPU-only room, CPU work may run on a GPU machine."""
    rooms = [_gpu_room("gpu-1", 4), AgentRoom(agent="cpu-1", caps=CPU, slots=1, used=1)]
    assert choose(needs_of(JobSpec(scenario="1080p-h264")), rooms) == Placement(agent="gpu-1")


def test_nvenc_sessions_and_memory_are_counted() -> None:
    """A GPU with no free NVENC session, or too little memory, takes no NVENC job."""
    needs = needs_of(JobSpec(scenario="1080p-h264-nvenc"))
    assert choose(needs, [_gpu_room("a", sessions_free=0)]) is None
    assert choose(needs, [_gpu_room("a", sessions_free=3, memory_free=100)]) is None
    assert choose(needs, [_gpu_room("a", 0), _gpu_room("b", 1)]) == Placement(agent="b", gpu=0)


def test_least_loaded_agent_wins_among_equals() -> None:
    """Between two equally able agents, the less loaded one gets the job."""
    rooms = [
        AgentRoom(agent="cpu-1", caps=CPU, slots=2, load=0.7),
        AgentRoom(agent="cpu-2", caps=CPU, slots=2, load=0.2),
    ]
    assert choose(needs_of(JobSpec(scenario="720p-h264")), rooms) == Placement(agent="cpu-2")


def test_a_pass_spreads_work_and_counts_every_session() -> None:
    """Placements fill the emptiest agent first and never exceed slots or NVENC sessions."""
    rooms = Rooms(
        [
            AgentRoom(agent="cpu-1", caps=CPU, slots=2),
            AgentRoom(agent="cpu-2", caps=CPU, slots=2),
            _gpu_room("gpu-1", sessions_free=2, slots=3),
        ]
    )
    cpu, nvenc = needs_of(JobSpec(scenario="720p-h264")), needs_of(JobSpec(scenario="4K-nvenc"))
    placed = [rooms.place(nvenc) for _ in range(3)]
    assert placed == [Placement(agent="gpu-1", gpu=0)] * 2 + [None]
    cpu_placed = [rooms.place(cpu) for _ in range(6)]
    assert [p.agent if p else None for p in cpu_placed] == [
        "cpu-1",
        "cpu-2",
        "cpu-1",
        "cpu-2",
        "gpu-1",
        None,
    ]
    assert rooms.free == 0
