"""NVIDIA GPUs through NVML (the ``pynvml`` module of nvidia-ml-py), or none, never a crash.

No module, no driver, no GPU or any NVML error at start means "no GPU capabilities": the agent
logs one line saying why and runs as a CPU agent. A reading a card does not support (older
cards have no energy counter) is None, not zero and not an error. The module is a parameter, so
tests hand in a fake one while this code path stays the one that ships.

NVENC session limits are not something NVML reports. GeForce and TITAN cards allow a few
concurrent sessions (8 since driver 551); data-centre and workstation cards have no fixed cap,
so placement counts them as ``UNCAPPED_SESSIONS``. A card whose encoder capacity is zero (A100,
H100) has no NVENC at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any, Final, TypeVar

import msgspec

from events.work import GpuTelemetry

log = logging.getLogger(__name__)

CONSUMER_SESSIONS: Final = 8
UNCAPPED_SESSIONS: Final = 32
_ENCODER_QUERY_H264: Final = 0  # NVML_ENCODER_QUERY_H264
_TEMPERATURE_GPU: Final = 0  # NVML_TEMPERATURE_GPU
_T = TypeVar("_T")


class GpuDevice(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU as NVML describes it at start."""

    index: int
    name: str
    memory_bytes: int
    nvenc: bool  # False when the card has no encoder (capacity 0); True when present or unknown
    nvenc_sessions: int


def session_limit(name: str) -> int:
    """Concurrent NVENC sessions a card of this name allows."""
    consumer = any(word in name for word in ("GeForce", "TITAN", "Titan"))
    return CONSUMER_SESSIONS if consumer else UNCAPPED_SESSIONS


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Nvml:
    """A session with NVML, or an empty one that reports no GPUs."""

    def __init__(self, module: Any | None, handles: list[Any], why_none: str = "") -> None:  # noqa: ANN401 - pynvml is untyped
        """Use ``Nvml.open``; this keeps the module and the device handles it found."""
        self._nvml = module
        self._handles = handles
        self.why_none = why_none

    @classmethod
    def open(cls, module: ModuleType | Any | None = None) -> Nvml:  # noqa: ANN401 - fakes welcome
        """Initialise NVML and list devices; on any failure an empty session and one log line."""
        if module is None:
            try:
                import pynvml  # noqa: PLC0415 - absent on machines without nvidia-ml-py

                module = pynvml
            except ImportError:
                return cls._none("the pynvml module (nvidia-ml-py) is not installed")
        error = getattr(module, "NVMLError", Exception)
        try:
            module.nvmlInit()
            count = int(module.nvmlDeviceGetCount())
            handles = [module.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except (error, AttributeError, OSError) as exc:
            return cls._none(f"NVML unavailable ({_text(exc) or type(exc).__name__})")
        if not handles:
            cls._shutdown(module)
            return cls._none("NVML found no NVIDIA GPU")
        return cls(module, handles)

    @classmethod
    def _none(cls, why: str) -> Nvml:
        log.info("no GPU capabilities: %s", why)
        return cls(None, [], why)

    @staticmethod
    def _shutdown(module: Any) -> None:  # noqa: ANN401 - pynvml is untyped
        error = getattr(module, "NVMLError", Exception)
        try:
            module.nvmlShutdown()
        except (error, AttributeError):
            log.debug("nvmlShutdown failed", exc_info=True)

    def close(self) -> None:
        """End the NVML session (no-op without one)."""
        if self._nvml is not None:
            self._shutdown(self._nvml)
            self._nvml = None
            self._handles = []

    @property
    def count(self) -> int:
        """How many GPUs this session sees."""
        return len(self._handles)

    def _read(self, function: str, *args: Any, convert: Callable[[Any], _T]) -> _T | None:  # noqa: ANN401
        """Call one NVML function; None when unsupported, missing or failing."""
        if self._nvml is None:
            return None
        error = getattr(self._nvml, "NVMLError", Exception)
        try:
            return convert(getattr(self._nvml, function)(*args))
        except (error, AttributeError, TypeError, ValueError):
            return None

    def devices(self) -> list[GpuDevice]:
        """Every GPU with model, memory and NVENC presence."""
        found = []
        for index, handle in enumerate(self._handles):
            name = self._read("nvmlDeviceGetName", handle, convert=_text) or f"GPU {index}"
            memory = self._read("nvmlDeviceGetMemoryInfo", handle, convert=lambda m: int(m.total))
            capacity = self._read(
                "nvmlDeviceGetEncoderCapacity", handle, _ENCODER_QUERY_H264, convert=int
            )
            found.append(
                GpuDevice(
                    index=index,
                    name=name,
                    memory_bytes=memory or 0,
                    nvenc=capacity is None or capacity > 0,
                    nvenc_sessions=session_limit(name) if capacity != 0 else 0,
                )
            )
        return found

    def telemetry(self) -> tuple[GpuTelemetry, ...]:
        """Each GPU's utilisation, memory, temperature, power and encoder sessions now."""
        return tuple(self._reading(index, handle) for index, handle in enumerate(self._handles))

    def _reading(self, index: int, handle: Any) -> GpuTelemetry:  # noqa: ANN401 - pynvml handle
        power_mw = self._read("nvmlDeviceGetPowerUsage", handle, convert=float)
        return GpuTelemetry(
            index=index,
            utilization_percent=self._read(
                "nvmlDeviceGetUtilizationRates", handle, convert=lambda u: float(u.gpu)
            ),
            memory_used_bytes=self._read(
                "nvmlDeviceGetMemoryInfo", handle, convert=lambda m: int(m.used)
            ),
            temperature_c=self._read(
                "nvmlDeviceGetTemperature", handle, _TEMPERATURE_GPU, convert=float
            ),
            power_w=None if power_mw is None else power_mw / 1000.0,
            encoder_sessions=self._read("nvmlDeviceGetEncoderSessions", handle, convert=len),
        )

    def energy_j(self, index: int) -> float | None:
        """The GPU's energy counter since driver load, in joules; None where unsupported."""
        if not 0 <= index < len(self._handles):
            return None
        millijoules = self._read(
            "nvmlDeviceGetTotalEnergyConsumption", self._handles[index], convert=float
        )
        return None if millijoules is None else millijoules / 1000.0
