"""The metrics every ffrtmp process serves beside its own: ``process_*`` and ``ffrtmp_build_info``.

Prometheus's process collector (CPU seconds, resident memory, open files, start time: what an
SRE reads first when a process misbehaves) and a build-info gauge, value 1, whose labels say
which version and Python run here, so a dashboard can tell a fleet mid-upgrade. The agent and
the exporter register these on their private registries.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from importlib import metadata
from typing import Final

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PACKAGE: Final = "ffrtmp"


def version() -> str:
    """The installed ffrtmp's version ("unknown" when run from a tree that is not installed)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return "unknown"


class BuildInfo(Collector):
    """``ffrtmp_build_info{version, python, component}`` = 1."""

    def __init__(self, component: str) -> None:
        """``component``: which process this is (agent, exporter)."""
        self._labels = [version(), platform.python_version(), component]

    def collect(self) -> Iterator[Metric]:
        """One sample, always 1."""
        family = GaugeMetricFamily(
            "ffrtmp_build_info",
            "Always 1; the labels say which ffrtmp and Python this process runs.",
            labels=["version", "python", "component"],
        )
        family.add_metric(self._labels, 1)
        yield family


def register_runtime(registry: CollectorRegistry, component: str) -> None:
    """Add ``process_*`` and ``ffrtmp_build_info`` to ``registry``."""
    ProcessCollector(registry=registry)
    registry.register(BuildInfo(component))
