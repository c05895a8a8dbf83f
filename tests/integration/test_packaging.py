"""The package builds with the oldest setuptools ``pyproject.toml`` allows, as pip would.

``[build-system] requires`` names a floor; a floor too old for the project table (setuptools
68 rejects the PEP 639 ``license = "Apache-2.0"`` string) breaks every install from source
whose build environment resolves low. This builds a wheel in a fresh venv holding exactly that
setuptools, from a copy of the sources (links kept, as a checkout has them: ``ffrtmp/nats.conf``
links to the top-level ``nats.conf``), and reads the wheel's metadata and ``nats.conf``.
Installing setuptools needs the package index: without it the test skips locally and fails in
CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("events", "projections", "agent", "ffrtmp")


def floor() -> str:
    """The version in ``setuptools>=X``, the only build requirement."""
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    (requirement,) = build["requires"]
    found = re.fullmatch(r"setuptools>=([0-9.]+)", requirement)
    assert found is not None, requirement
    return found.group(1)


def run(*argv: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A command's result; its output says why when it fails."""
    return subprocess.run(  # noqa: S603 -- our own commands
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_wheel_builds_with_the_minimum_setuptools(tmp_path: Path) -> None:
    """With setuptools at the floor, the wheel builds and says Apache-2.0 and carries nats.conf."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "nats.conf"):
        shutil.copy(ROOT / name, source / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            source / package,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    assert (source / "ffrtmp" / "nats.conf").is_symlink()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    got = run(python, "-m", "pip", "install", "-q", f"setuptools=={floor()}")
    if got.returncode != 0:
        why = f"cannot install setuptools=={floor()}: {got.stderr.strip()[-300:]}"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    out = tmp_path / "wheels"
    built = run(
        python, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w", out, ".",
        cwd=source,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = out.glob("ffrtmp-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = (n for n in names if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode()
        shipped = archive.read("ffrtmp/nats.conf").decode()
    assert "License-Expression: Apache-2.0" in text
    assert shipped == (ROOT / "nats.conf").read_text()
    assert {name.split("/", 1)[0] for name in names} >= set(PACKAGES)
