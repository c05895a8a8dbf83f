"""Prometheus file_sd targets for the farm ``ffrtmp up`` runs: where its exporter and agents listen.

``up`` writes ``<data-dir>/prometheus/exporter.json`` and ``agents.json`` (Prometheus's file
service discovery format) once it has chosen its ports; ``deploy/prometheus/local.yml`` reads
them, so a Prometheus started beside the farm scrapes every process without a config edit, and
picks up a new file when the farm restarts. Agents' health ports are free ports unless asked for
(``--agent-port-base N``: agent i listens on N + i - 1). Pure except ``write_targets``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from events.errors import InvalidSpec
from ffrtmp.farm import Child, Layout, Role

EXPORTER_FILE: Final = "exporter.json"
AGENTS_FILE: Final = "agents.json"
_HOST: Final = "127.0.0.1"
_MAX_PORT: Final = 65535


def agent_ports(count: int, base: int | None, free: Callable[[], int]) -> tuple[int, ...]:
    """Each agent's health port: ``base``, ``base + 1`` … when given, else ``free()`` each."""
    if base is None:
        return tuple(free() for _ in range(count))
    if not 0 < base <= _MAX_PORT - max(count - 1, 0):
        raise InvalidSpec("agent_port_base", f"{base} + {count} agents is not a range of ports")
    return tuple(range(base, base + count))


def targets(children: Sequence[Child]) -> dict[str, list[dict[str, object]]]:
    """File name → target groups: the exporter, and one group per agent labelled with its id."""
    exporter = [
        _group(c.port, component="exporter")
        for c in children
        if c.role is Role.EXPORTER and c.port is not None
    ]
    agents = [
        _group(c.port, component="agent", agent=c.name)
        for c in children
        if c.role is Role.AGENT and c.port is not None
    ]
    return {EXPORTER_FILE: exporter, AGENTS_FILE: agents}


def _group(port: int, **labels: str) -> dict[str, object]:
    return {"targets": [f"{_HOST}:{port}"], "labels": labels}


def write_targets(layout: Layout, children: Sequence[Child]) -> Path:
    """Write each file whole (a temporary file renamed over it: Prometheus never reads half)."""
    folder = Path(layout.prometheus)
    folder.mkdir(parents=True, exist_ok=True)
    for name, groups in targets(children).items():
        temporary = folder / f".{name}.tmp"
        temporary.write_text(json.dumps(groups, indent=2) + "\n")
        temporary.replace(folder / name)
    return folder
