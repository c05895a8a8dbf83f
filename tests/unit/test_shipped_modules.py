"""The wheel ships the product: no module in it is there only for the tests.

A module counts as used by the product when another shipped module imports it, names it in a
string (``python -m ffrtmp.bench.chaosagent``), or it is an entry point (a package, a
``__main__``, the console script's module, a command the CLI loads lazily). A shipped module
that only tests import belongs under ``tests/``. The package list is the one the wheel gets:
``[tool.setuptools.packages.find] include`` of ``pyproject.toml``.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import tomllib
from pathlib import Path

from ffrtmp.cli.lazy import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def shipped_packages() -> list[str]:
    """The packages the wheel holds, as setuptools finds them."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    found = (
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in ROOT.rglob("__init__.py")
        if ".venv" not in init.parts
    )
    return sorted(name for name in found if any(fnmatch.fnmatch(name, p) for p in include))


def module_name(path: Path) -> str:
    """``ffrtmp/cli/__init__.py`` → ``ffrtmp.cli``; ``ffrtmp/cli/up.py`` → ``ffrtmp.cli.up``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def named_in(path: Path) -> set[str]:
    """Every dotted name ``path`` imports or writes as a string, with its parents."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and DOTTED.fullmatch(str(node.value)):
            names.add(str(node.value))
    parents = {".".join(n.split(".")[:i]) for n in names for i in range(1, n.count(".") + 2)}
    return parents - {me}


def shipped_modules() -> dict[str, Path]:
    """Every module of the wheel's packages, by dotted name."""
    modules: dict[str, Path] = {}
    for package in shipped_packages():
        for path in (ROOT / package.replace(".", "/")).glob("*.py"):
            modules[module_name(path)] = path
    return modules


def test_the_wheel_ships_no_module_only_tests_import() -> None:
    """Each shipped module that the tests import is imported or named by the product too."""
    modules = shipped_modules()
    product = set().union(*(named_in(path) for path in modules.values()))
    tests = set().union(*(named_in(path) for path in (ROOT / "tests").rglob("*.py")))
    entry = {m for m in modules if m.endswith("__main__")} | {c.module for c in COMMANDS}
    entry |= set(shipped_packages()) | {"ffrtmp.cli"}
    only_tests = sorted((tests & modules.keys()) - product - entry)
    assert only_tests == [], f"move these under tests/: {only_tests}"


def test_the_scan_sees_the_product_and_the_tests() -> None:
    """The scan finds the packages and sees a module the product imports (not vacuous)."""
    modules = shipped_modules()
    assert {"events", "projections", "agent", "ffrtmp", "ffrtmp.cli"} <= set(shipped_packages())
    assert "events.job" in set().union(*(named_in(path) for path in modules.values()))
    assert "tests.simagent" in named_in(ROOT / "tests" / "farm.py")
