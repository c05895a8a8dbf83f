"""Readings for a heartbeat and energy counters for results: CPU, memory, power, GPUs.

``Telemetry.read`` gives the live values a heartbeat carries; ``Telemetry.joules`` is the
cumulative energy counter an attempt's energy is the difference of: the GPU's NVML counter for
NVENC work, the CPU packages' RAPL counter otherwise. Where neither can be read, energy is None.
RAPL measures the whole package, so with several jobs at once each one's figure includes its
neighbours' share: it is the machine's energy over the job's wall time.
"""

from __future__ import annotations

import time
from typing import Protocol

import msgspec
import psutil

from agent.hardware import Rapl
from agent.nvml import Nvml
from events.work import GpuTelemetry


class EnergyMeter(Protocol):
    """A cumulative energy counter, per GPU or for the CPU."""

    def joules(self, gpu: int | None) -> float | None:
        """Energy counted so far, in joules; None where the machine cannot measure it."""
        ...


class Hardware(msgspec.Struct, frozen=True, kw_only=True):
    """A heartbeat's hardware fields, named as ``events.work.Heartbeat`` names them."""

    cpu_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_w: float | None = None  # GPUs' board power plus CPU package power, where measured
    gpus: tuple[GpuTelemetry, ...] = ()


class Telemetry:
    """Reads the host's live state; one per agent."""

    def __init__(self, nvml: Nvml, rapl: Rapl | None = None) -> None:
        """Read GPUs through ``nvml`` and CPU energy through ``rapl`` (None: not measured)."""
        self.nvml = nvml
        self.rapl = rapl
        self._last_cpu: tuple[float, float] | None = None  # (monotonic s, joules)
        psutil.cpu_percent(interval=None)  # the first call only starts psutil's interval

    def read(self) -> Hardware:
        """The readings now; CPU percent and CPU power are averages since the last read."""
        memory = psutil.virtual_memory()
        gpus = self.nvml.telemetry()
        powers = [gpu.power_w for gpu in gpus if gpu.power_w is not None]
        cpu_w = self._cpu_power()
        if cpu_w is not None:
            powers.append(cpu_w)
        return Hardware(
            cpu_percent=psutil.cpu_percent(interval=None),
            memory_used_bytes=int(memory.total - memory.available),
            memory_total_bytes=int(memory.total),
            power_w=sum(powers) if powers else None,
            gpus=gpus,
        )

    def _cpu_power(self) -> float | None:
        joules = None if self.rapl is None else self.rapl.joules()
        if joules is None:
            return None
        now = time.monotonic()
        last, self._last_cpu = self._last_cpu, (now, joules)
        if last is None or now <= last[0]:
            return None
        return (joules - last[1]) / (now - last[0])

    def joules(self, gpu: int | None) -> float | None:
        """The GPU's energy counter when ``gpu`` is given, else the CPU packages'."""
        if gpu is not None:
            return self.nvml.energy_j(gpu)
        return None if self.rapl is None else self.rapl.joules()
