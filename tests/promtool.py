"""Running the real ``promtool`` (Debian's prometheus package) from a test.

A missing binary skips the test locally and fails it in CI, as a missing nats-server does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


def binary(name: str) -> str:
    """The path of a Prometheus binary; skip (fail in CI) when it is not installed."""
    found = shutil.which(name)
    if found is None:
        why = f"{name} is not installed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


def promtool(*args: str | Path, stdin: str | None = None) -> str:
    """Run promtool; its output, or a failure with what it said."""
    done = subprocess.run(  # noqa: S603 -- our own arguments
        [binary("promtool"), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr
