"""NVML handling with a fake pynvml module: GPU present, absent, driver errors, missing calls."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from agent.nvml import CONSUMER_SESSIONS, UNCAPPED_SESSIONS, Nvml
from agent.telemetry import Telemetry
from events.work import GpuTelemetry


class NVMLError(Exception):
    """Stands in for pynvml.NVMLError."""


class FakeNvml:
    """A pynvml stand-in: each GPU is a dict of readings; a reading of None raises NVMLError."""

    NVMLError = NVMLError

    def __init__(self, gpus: list[dict[str, Any]], init_error: str | None = None) -> None:
        self.gpus = gpus
        self.init_error = init_error
        self.shutdowns = 0

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> dict[str, Any]:  # noqa: N802
        return self.gpus[index]

    @staticmethod
    def _get(handle: dict[str, Any], key: str) -> Any:
        value = handle.get(key)
        if value is None:
            raise NVMLError("Not Supported")
        return value

    def nvmlDeviceGetName(self, handle: dict[str, Any]) -> bytes:  # noqa: N802
        return self._get(handle, "name")  # type: ignore[no-any-return]

    def nvmlDeviceGetMemoryInfo(self, handle: dict[str, Any]) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(total=self._get(handle, "memory"), used=self._get(handle, "used"))

    def nvmlDeviceGetEncoderCapacity(self, handle: dict[str, Any], _query: int) -> int:  # noqa: N802
        return self._get(handle, "capacity")  # type: ignore[no-any-return]

    def nvmlDeviceGetUtilizationRates(self, handle: dict[str, Any]) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(gpu=self._get(handle, "util"), memory=0)

    def nvmlDeviceGetTemperature(self, handle: dict[str, Any], _sensor: int) -> int:  # noqa: N802
        return self._get(handle, "temp")  # type: ignore[no-any-return]

    def nvmlDeviceGetPowerUsage(self, handle: dict[str, Any]) -> int:  # noqa: N802
        return self._get(handle, "power_mw")  # type: ignore[no-any-return]

    def nvmlDeviceGetEncoderSessions(self, handle: dict[str, Any]) -> list[object]:  # noqa: N802
        return self._get(handle, "sessions")  # type: ignore[no-any-return]

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: dict[str, Any]) -> int:  # noqa: N802
        return self._get(handle, "energy_mj")  # type: ignore[no-any-return]


L4 = {
    "name": b"NVIDIA L4", "memory": 24 << 30, "used": 1 << 30, "capacity": 100, "util": 37,
    "temp": 61, "power_mw": 41_500, "sessions": [object(), object()], "energy_mj": 5_000_000,
}  # fmt: skip
GEFORCE = {"name": "NVIDIA GeForce RTX 4090", "memory": 24 << 30, "capacity": 100}
H100 = {"name": "NVIDIA H100 80GB HBM3", "memory": 80 << 30, "capacity": 0}


def test_gpus_present() -> None:
    """Each GPU's model, memory and NVENC session limit come from NVML."""
    nvml = Nvml.open(FakeNvml([L4, GEFORCE, H100]))
    devices = nvml.devices()
    assert [d.name for d in devices] == [
        "NVIDIA L4",
        "NVIDIA GeForce RTX 4090",
        "NVIDIA H100 80GB HBM3",
    ]
    assert devices[0].memory_bytes == 24 << 30
    assert [d.nvenc for d in devices] == [True, True, False]  # H100: no NVENC unit
    assert [d.nvenc_sessions for d in devices] == [UNCAPPED_SESSIONS, CONSUMER_SESSIONS, 0]


def test_telemetry_readings() -> None:
    """Utilisation, memory, temperature, power (W) and encoder sessions per GPU."""
    nvml = Nvml.open(FakeNvml([L4]))
    assert nvml.telemetry() == (
        GpuTelemetry(
            index=0,
            utilization_percent=37.0,
            memory_used_bytes=1 << 30,
            temperature_c=61.0,
            power_w=41.5,
            encoder_sessions=2,
        ),
    )
    assert nvml.energy_j(0) == 5000.0
    assert nvml.energy_j(3) is None


def test_unsupported_readings_are_none() -> None:
    """A card that cannot report a value gives None for it, not zero and not an error."""
    nvml = Nvml.open(FakeNvml([GEFORCE]))
    reading = nvml.telemetry()[0]
    assert reading.temperature_c is None
    assert reading.power_w is None
    assert nvml.energy_j(0) is None


def test_missing_function_is_none() -> None:
    """An older pynvml without a function reports None for that reading, the rest as usual."""
    fake = FakeNvml([L4])
    calls = {name: getattr(fake, name) for name in dir(fake) if name.startswith("nvml")}
    del calls["nvmlDeviceGetTotalEnergyConsumption"]
    nvml = Nvml.open(SimpleNamespace(**calls, NVMLError=NVMLError))
    assert nvml.energy_j(0) is None
    assert nvml.telemetry()[0].temperature_c == 61.0


def test_no_gpu(caplog: pytest.LogCaptureFixture) -> None:
    """NVML that finds no device gives no GPUs and one log line saying so."""
    fake = FakeNvml([])
    with caplog.at_level(logging.INFO, logger="agent.nvml"):
        nvml = Nvml.open(fake)
    assert nvml.count == 0
    assert nvml.devices() == []
    assert nvml.telemetry() == ()
    assert fake.shutdowns == 1
    assert [r.getMessage() for r in caplog.records] == [
        "no GPU capabilities: NVML found no NVIDIA GPU"
    ]


@pytest.mark.parametrize("error", ["Driver Not Loaded", "NVML Shared Library Not Found"])
def test_driver_error_on_init(error: str, caplog: pytest.LogCaptureFixture) -> None:
    """NVMLError at init means no GPU capabilities, logged once, never raised."""
    with caplog.at_level(logging.INFO, logger="agent.nvml"):
        nvml = Nvml.open(FakeNvml([L4], init_error=error))
    assert nvml.devices() == []
    assert nvml.energy_j(0) is None
    assert error in nvml.why_none
    assert len(caplog.records) == 1


def test_module_without_nvml_functions() -> None:
    """A module that lacks nvmlInit (a broken install) is treated as no NVML."""
    nvml = Nvml.open(SimpleNamespace(NVMLError=NVMLError))
    assert nvml.count == 0
    assert "NVML unavailable" in nvml.why_none


def test_close_ends_the_session() -> None:
    """Closing shuts NVML down once; afterwards nothing is read."""
    fake = FakeNvml([L4])
    nvml = Nvml.open(fake)
    nvml.close()
    nvml.close()
    assert fake.shutdowns == 1
    assert nvml.telemetry() == ()


def test_heartbeat_readings_sum_gpu_power() -> None:
    """Telemetry carries the GPUs' readings, and their power in the machine's total."""
    readings = Telemetry(Nvml.open(FakeNvml([L4]))).read()
    assert readings.gpus[0].utilization_percent == 37.0
    assert readings.power_w == 41.5
    assert readings.memory_total_bytes is not None
    assert readings.memory_total_bytes > 0
    assert readings.cpu_percent is not None
