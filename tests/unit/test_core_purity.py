"""The pure core imports no clock, randomness, network or database."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PURE = [
    "events/base.py",
    "events/enums.py",
    "events/errors.py",
    "events/ids.py",
    "events/scenarios.py",
    "events/spec.py",
    "events/job_events.py",
    "events/agent_events.py",
    "events/commands.py",
    "events/job.py",
    "events/policy.py",
    "events/codec.py",
    "events/subjects.py",
    "events/work.py",
    "events/agent.py",
]
FORBIDDEN = {
    "nats",
    "duckdb",
    "anyio",
    "asyncio",
    "time",
    "random",
    "uuid",
    "os",
    "secrets",
    "datetime",
    "socket",
    "subprocess",
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", PURE)
def test_core_module_is_pure(module: str) -> None:
    """A core module imports none of the clock, randomness, I/O or database modules."""
    assert not (_imports(ROOT / module) & FORBIDDEN)


@pytest.mark.parametrize("package", ["events"])
def test_events_imports_nothing_of_ours(package: str) -> None:
    """``events`` is the bottom layer: it imports no other ffrtmp package."""
    ours = {"projections", "agent", "ffrtmp"}
    for path in (ROOT / package).glob("*.py"):
        assert not (_imports(path) & ours), path.name
