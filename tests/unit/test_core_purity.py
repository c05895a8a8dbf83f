"""The pure core imports no clock, randomness, network or database.

The core is every decider and fold (``events``), and the parts of the scheduler and the read
models that decide or compute: the scheduler core, placement, timers and the ready queue, the
projection rows, and the checker's rules (its invariants and the legal transitions). Each is
checked by its own imports, and everything of ours that it imports must be in the core too, so
a pure module cannot reach I/O through a helper.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = frozenset({"events", "projections", "agent", "ffrtmp"})
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
    "events/dedup.py",
    "events/limits.py",
    "events/media.py",
    "events/redact.py",
    "events/deadletter.py",
    "agent/needs.py",
    "agent/gst_pipeline.py",
    "ffrtmp/scheduler/core.py",
    "ffrtmp/scheduler/placement.py",
    "ffrtmp/scheduler/timers.py",
    "ffrtmp/scheduler/ready.py",
    "ffrtmp/scheduler/deadlines.py",
    "projections/rows.py",
    "ffrtmp/check/invariants.py",
    "ffrtmp/check/legal.py",
    "events/admit.py",
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


def _our_modules(path: Path) -> set[str]:
    """The files of ours that ``path`` imports (``from events import dedup`` is events/dedup.py)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            dotted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            dotted = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in dotted:
            if name.split(".")[0] not in OURS:
                continue
            module = ROOT / (name.replace(".", "/") + ".py")
            if module.exists():
                found.add(module.relative_to(ROOT).as_posix())
    return found


@pytest.mark.parametrize("module", PURE)
def test_core_module_imports_only_the_core(module: str) -> None:
    """Whatever of ours a core module imports is in the core too: no I/O through a helper."""
    assert _our_modules(ROOT / module) - set(PURE) == set()


def test_the_core_list_names_real_modules() -> None:
    """Every listed module exists, and the scan sees a core module's imports (not vacuous)."""
    assert all((ROOT / module).exists() for module in PURE)
    assert "events/agent.py" in _our_modules(ROOT / "ffrtmp/scheduler/core.py")
