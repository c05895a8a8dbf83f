"""Sessions and VRAM on a real driver: what placement assumes against what NVML measures.

Several NVENC attempts run at once through the agent's engine. While they run, the driver must
count their encoder sessions, and the VRAM they take per session must fit the per-session
working set placement reserves (``NVENC_VRAM_BYTES``): otherwise the scheduler would place more
sessions on a card than its memory holds. The scheduler's room for that GPU, fed the real
heartbeat, must never exceed what the driver says is free.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.engine import Execution, Failed
from agent.main import engines
from agent.nvml import Nvml
from agent.telemetry import Telemetry
from events.agent_events import Capabilities
from events.spec import JobSpec, validate
from events.work import Dispatch, GpuTelemetry, Heartbeat
from ffrtmp.scheduler.placement import NVENC_VRAM_BYTES
from tests.farm import wait_until
from tests.gpu.conftest import nvenc_gpu
from tests.unit.test_scheduler_core import Farm as CoreFarm

pytestmark = pytest.mark.anyio


def reading(nvml: Nvml, index: int) -> GpuTelemetry:
    """GPU ``index``'s telemetry now."""
    return next(g for g in nvml.telemetry() if g.index == index)


async def test_sessions_and_vram_stay_within_what_placement_counts(
    capabilities: Capabilities, nvml: Nvml, ffmpeg: Path, tmp_path: Path
) -> None:
    """N encodes at once: N sessions on the driver, under NVENC_VRAM_BYTES each, room honest."""
    gpu = nvenc_gpu(capabilities, "h264_nvenc")
    count = min(3, gpu.nvenc_sessions)
    chooser = engines(str(ffmpeg), None, capabilities, tmp_path, Telemetry(nvml))
    before = reading(nvml, gpu.index)
    spec = validate(JobSpec(scenario="1080p-h264-nvenc", input="testsrc2", output="none",
                            duration_s=3600.0))  # fmt: skip
    running: list[Execution] = []
    try:
        for attempt in range(1, count + 1):
            started = await chooser.start(
                Dispatch(
                    job=f"s{attempt}",
                    attempt=1,
                    spec=spec,
                    budget_s=0.0,
                    after_seq=1,
                    at=0.0,
                    gpu=gpu.index,
                )
            )
            assert not isinstance(started, Failed), started
            running.append(started)

        async def all_encoding() -> bool:
            return all(e.progress().frames > 0 for e in running)

        await wait_until(all_encoding, "every NVENC session to encode", 60.0)
        during = reading(nvml, gpu.index)
    finally:
        await asyncio.gather(*(e.cancel() for e in running))
    if during.encoder_sessions is not None:
        assert during.encoder_sessions >= count
    assert during.memory_used_bytes is not None
    assert before.memory_used_bytes is not None
    per_session = (during.memory_used_bytes - before.memory_used_bytes) / count
    assert 0 < per_session <= NVENC_VRAM_BYTES, f"{per_session / 2**20:.0f} MiB per session"
    core_room_is_honest(capabilities, gpu.index, count, during)


def core_room_is_honest(
    capabilities: Capabilities, index: int, count: int, during: GpuTelemetry
) -> None:
    """The scheduler holding ``count`` attempts on the GPU, told the real heartbeat."""
    farm = CoreFarm()
    farm.register("g1", capabilities, slots=count + 1)  # a slot left: the room stays listed
    for job in range(count):
        farm.submit(f"j{job}", scenario="1080p-h264-nvenc")
    farm.plan()
    beat = Heartbeat(agent="g1", at=farm.now, slots=count + 1, free_slots=1, gpus=(during,))
    farm.core.heard_from(beat, farm.now)
    room = farm.core.rooms().room("g1")
    assert room is not None
    gpu = next(g for g in room.gpus if g.index == index)
    total = next(g.memory_bytes for g in capabilities.gpus if g.index == index)
    assert during.memory_used_bytes is not None
    assert gpu.memory_free_bytes <= total - during.memory_used_bytes
    held = next(g.nvenc_sessions for g in capabilities.gpus if g.index == index)
    assert gpu.sessions_free == held - count
