"""``ffrtmp.lifeline.end``: SIGTERM, a grace period, SIGKILL; the process is reaped either way."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from ffrtmp.lifeline import end
from tests.waiting import wait_for

DEADLINE_S = 20.0
_STUBBORN = """
import pathlib, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
pathlib.Path(sys.argv[1]).touch()
time.sleep(600)
"""


def _python(code: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code, *args])  # noqa: S603 - fixed argv


def test_a_process_that_heeds_sigterm_ends_by_it() -> None:
    """A process with SIGTERM's default action ends by SIGTERM within the grace period."""
    proc = _python("import time; time.sleep(600)")
    end(proc, DEADLINE_S)
    assert proc.returncode == -signal.SIGTERM


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace(tmp_path: Path) -> None:
    """SIGTERM ignored: SIGKILL once the grace has passed, and the process is reaped."""
    ready = tmp_path / "ready"
    proc = _python(_STUBBORN, str(ready))
    wait_for(ready.exists, "the SIGTERM handler to be set", DEADLINE_S)
    end(proc, 0.2)
    assert proc.returncode == -signal.SIGKILL


def test_an_exited_process_is_only_reaped() -> None:
    """No signal to a process that has already exited (its pid may belong to another)."""
    proc = _python("raise SystemExit(3)")
    wait_for(lambda: proc.poll() is not None, "the process to exit", DEADLINE_S)
    end(proc, DEADLINE_S)
    assert proc.returncode == 3
