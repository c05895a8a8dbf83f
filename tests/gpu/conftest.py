"""The GPU suite: real NVIDIA driver, real NVML, real NVENC through the agent's own engine.

Every test here needs an NVIDIA GPU and its driver. Without one the whole directory is skipped
with the reason NVML gave, so CI and laptops run it as skips; ``tests/gpu/run.sh`` sets
``FFRTMP_REQUIRE_GPU=1`` on a GPU machine, which turns that skip into a failure (a broken driver
must not pass as "no GPU"). Encoders come from the agent's own detection (``agent.capabilities``:
a five-frame test encode per encoder per GPU), so a card without NVENC (A100, H100, H200) or
without AV1 NVENC (before Ada) skips those encodes with a sentence saying which.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.capabilities import detect
from agent.ffmpeg_binary import find_ffmpeg
from agent.nvml import Nvml
from events.agent_events import Capabilities, GpuInfo


@pytest.fixture(scope="session")
def nvml() -> Iterator[Nvml]:
    """An NVML session on this machine's GPUs; the suite skips (or fails, when required) without."""
    session = Nvml.open()
    if session.count == 0:
        session.close()
        why = f"no NVIDIA GPU here: {session.why_none}"
        if os.environ.get("FFRTMP_REQUIRE_GPU") == "1":
            pytest.fail(why)
        pytest.skip(why)
    yield session
    session.close()


@pytest.fixture(scope="session")
def ffmpeg() -> Path:
    """The FFmpeg the agent would use (PATH, else imageio-ffmpeg's)."""
    return find_ffmpeg(None)


@pytest.fixture(scope="session")
def capabilities(nvml: Nvml, ffmpeg: Path) -> Capabilities:
    """What the agent registers on this machine, NVENC proven by test encodes."""
    return detect(ffmpeg, nvml)


def nvenc_gpu(capabilities: Capabilities, encoder: str) -> GpuInfo:
    """The first GPU on which ``encoder`` was proven; skips saying why when there is none."""
    for gpu in capabilities.gpus:
        if encoder in gpu.encoders:
            return gpu
    found = "; ".join(
        f"GPU {gpu.index} {gpu.name}: {', '.join(gpu.encoders) or 'no NVENC'}"
        for gpu in capabilities.gpus
    )
    if os.environ.get("FFRTMP_REQUIRE_NVENC") == "1":
        pytest.fail(f"{encoder} was required but not proven ({found})")
    pytest.skip(f"{encoder} not proven on this machine ({found})")
