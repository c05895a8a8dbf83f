"""The host's CPU, memory and load (psutil) and its CPU energy counter (Intel RAPL), if readable.

RAPL counters live under /sys/class/powercap as ``intel-rapl:<n>/energy_uj``, one per CPU
package, in microjoules, wrapping at ``max_energy_range_uj``. Since 2020 most kernels let only
root read them; an unreadable counter means the machine cannot measure CPU energy here, and
readings say None rather than zero.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Final

import msgspec
import psutil

POWERCAP: Final = Path("/sys/class/powercap")


class Host(msgspec.Struct, frozen=True, kw_only=True):
    """What the machine is: CPU model, logical cores, RAM."""

    hostname: str
    cpu_model: str
    cpu_cores: int
    ram_bytes: int


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo), else what the platform module says."""
    try:
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host() -> Host:
    """Describe this machine."""
    return Host(
        hostname=platform.node(),
        cpu_model=cpu_model(),
        cpu_cores=psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        ram_bytes=int(psutil.virtual_memory().total),
    )


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = psutil.getloadavg()
    return (one, five, fifteen)


class _Counter(msgspec.Struct, kw_only=True):
    path: Path
    wrap_uj: int
    last_uj: int
    total_uj: int = 0


class Rapl:
    """Summed package energy from RAPL, monotonic across counter wraps; None when unreadable."""

    def __init__(self, root: Path = POWERCAP) -> None:
        """Find the package-level counters under ``root`` that this process can read."""
        self._counters: list[_Counter] = []
        for zone in sorted(root.glob("intel-rapl:*")):
            if zone.name.count(":") != 1:
                continue  # intel-rapl:0:0 is a sub-zone (core, uncore): counted in its package
            counter = self._open(zone)
            if counter is not None:
                self._counters.append(counter)

    @staticmethod
    def _open(zone: Path) -> _Counter | None:
        try:
            now = int((zone / "energy_uj").read_text())
            wrap = int((zone / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            return None
        return _Counter(path=zone / "energy_uj", wrap_uj=wrap, last_uj=now)

    @property
    def available(self) -> bool:
        """Whether any package counter is readable."""
        return bool(self._counters)

    def joules(self) -> float | None:
        """Energy the CPU packages used since this object was made, in joules."""
        if not self._counters:
            return None
        for counter in self._counters:
            try:
                now = int(counter.path.read_text())
            except (OSError, ValueError):
                return None
            step = now - counter.last_uj
            counter.total_uj += step if step >= 0 else step + counter.wrap_uj
            counter.last_uj = now
        return sum(counter.total_uj for counter in self._counters) / 1e6
