"""NVML on a real driver: devices, live readings, the energy counter, and what is registered."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from agent.nvml import Nvml
from agent.telemetry import Telemetry
from events.agent_events import Capabilities

GIB = 1024**3


def smi(query: str) -> list[str]:
    """One ``nvidia-smi --query-gpu`` column, one value per GPU; skips without nvidia-smi."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        pytest.skip("nvidia-smi is not installed: nothing independent to compare with")
    done = subprocess.run(  # noqa: S603 - fixed argv
        [tool, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
        capture_output=True, check=True, timeout=30,
    )  # fmt: skip
    return [line.strip() for line in done.stdout.decode().splitlines() if line.strip()]


def test_every_gpu_is_listed_with_its_name_and_memory(nvml: Nvml) -> None:
    """NVML's devices match nvidia-smi's: the same count, names and total memory (MiB)."""
    devices = nvml.devices()
    assert len(devices) == nvml.count >= 1
    names, totals = smi("name"), smi("memory.total")
    assert [d.name for d in devices] == names
    for device, total_mib in zip(devices, totals, strict=True):
        assert device.memory_bytes >= GIB
        assert abs(device.memory_bytes / 2**20 - float(total_mib)) <= 1


def test_live_readings_are_in_range(nvml: Nvml) -> None:
    """Utilisation, memory, temperature and power read on every GPU, each plausible."""
    devices = {d.index: d for d in nvml.devices()}
    for reading in nvml.telemetry():
        total = devices[reading.index].memory_bytes
        assert reading.memory_used_bytes is not None
        assert 0 < reading.memory_used_bytes <= total
        assert reading.utilization_percent is not None
        assert 0 <= reading.utilization_percent <= 100
        assert reading.temperature_c is not None
        assert 5 <= reading.temperature_c <= 110
        if reading.power_w is not None:  # some boards do not report it
            assert 1 <= reading.power_w <= 1500
        if reading.encoder_sessions is not None:
            assert reading.encoder_sessions >= 0


def test_the_energy_counter_only_grows(nvml: Nvml) -> None:
    """The counter results take differences of never goes back (Volta and later have one)."""
    first = nvml.energy_j(0)
    if first is None:
        pytest.skip("this GPU has no energy counter (before Volta)")
    deadline = time.monotonic() + 5.0
    second: float | None = first
    while second == first and time.monotonic() < deadline:
        time.sleep(0.1)
        second = nvml.energy_j(0)
    assert second is not None
    assert second > first


def test_a_heartbeat_carries_every_gpu(nvml: Nvml) -> None:
    """The agent's telemetry (what a heartbeat sends) has one reading per GPU and their power."""
    hardware = Telemetry(nvml).read()
    assert [g.index for g in hardware.gpus] == list(range(nvml.count))
    if any(g.power_w is not None for g in hardware.gpus):
        assert hardware.power_w is not None
        assert hardware.power_w > 0


def test_registered_gpus_offer_only_proven_nvenc(nvml: Nvml, capabilities: Capabilities) -> None:
    """A card NVML says has no encoder registers none and no sessions; others list proven ones."""
    devices = {d.index: d for d in nvml.devices()}
    assert [g.index for g in capabilities.gpus] == sorted(devices)
    for gpu in capabilities.gpus:
        device = devices[gpu.index]
        assert gpu.memory_bytes == device.memory_bytes
        assert set(gpu.encoders) <= {"h264_nvenc", "hevc_nvenc", "av1_nvenc"}
        assert set(gpu.encoders) <= set(capabilities.encoders)
        if not device.nvenc:  # A100, H100, H200: encoder capacity 0
            assert gpu.encoders == ()
            assert gpu.nvenc_sessions == 0
        elif gpu.encoders:
            assert gpu.nvenc_sessions >= 1
