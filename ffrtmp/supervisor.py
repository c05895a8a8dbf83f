"""Child processes of ``ffrtmp up``: start them, notice when one dies, stop them all in order.

The I/O half of the one-command farm (``ffrtmp.farm`` is the pure plan). Each child runs in its
own session, so a terminal's Ctrl-C reaches ``up`` alone and ``up`` stops the children in the
plan's order: SIGTERM to a group (all agents at once, then the scheduler, …), a wait with a
deadline, then SIGKILL to whatever is left of the group's process groups. Descendants (an
agent's FFmpeg runs in a process group of its own) are noted before the SIGTERM and killed if
they outlive their parent, so a stop leaves no process behind.

A child that dies is reported once by ``poll`` and never restarted: a farm that hides crashes
by restarting them teaches nobody anything. On Linux each child also asks the kernel for a
SIGTERM when ``up`` itself dies (``PR_SET_PDEATHSIG``), so even ``kill -9`` of ``up`` leaves
no farm running without it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Final

import msgspec
import psutil

from ffrtmp.farm import Child, stop_groups

_POLL_S: Final = 0.05
_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


def _term_with_parent() -> None:
    """In the child, before exec: SIGTERM me when the process that started me dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Exit(msgspec.Struct, frozen=True, kw_only=True):
    """A child that ended, and how."""

    name: str
    code: int

    def describe(self) -> str:
        """``exited with code 1`` or ``killed by SIGKILL``."""
        if self.code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-self.code).name}"
        return f"exited with code {self.code}"


class _Running:
    def __init__(self, child: Child, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.child, self.proc, self.log = child, proc, log
        self.reported = False


class Supervisor:
    """The children of one farm; ``start`` them, ``poll`` for deaths, ``stop`` them all."""

    def __init__(self, children: list[Child], log_dir: Path, env: dict[str, str]) -> None:
        """Remember what to run; ``env`` is the children's whole environment."""
        self.children = children
        self.log_dir = log_dir
        self.env = {**env, "PYTHONUNBUFFERED": "1"}  # their logs read live, line by line
        self._running: dict[str, _Running] = {}

    def log_path(self, name: str) -> Path:
        """Where a child's stdout and stderr go."""
        return self.log_dir / f"{name}.log"

    def start(self) -> None:
        """Spawn every child without waiting for any (readiness is the caller's condition)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            log = self.log_path(child.name).open("ab")
            proc = subprocess.Popen(  # noqa: S603 -- our own CLI, argv from the plan
                child.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_term_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509 -- async-signal-safe: one prctl call
            )
            self._running[child.name] = _Running(child, proc, log)

    def pids(self) -> dict[str, int]:
        """Each started child's process id."""
        return {name: run.proc.pid for name, run in self._running.items()}

    def alive(self, name: str) -> bool:
        """Whether the child is running."""
        run = self._running.get(name)
        return run is not None and run.proc.poll() is None

    def poll(self) -> list[Exit]:
        """Children that ended since the last call (each reported once)."""
        ended = []
        for name, run in self._running.items():
            code = run.proc.poll()
            if code is not None and not run.reported:
                run.reported = True
                ended.append(Exit(name=name, code=code))
        return ended

    def log_tail(self, name: str, lines: int = 5) -> str:
        """The last lines a child printed, joined on one line."""
        with contextlib.suppress(OSError):
            text = self.log_path(name).read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:]) or "(nothing printed)"
        return "(no log)"

    def stop(self, timeout_s: float) -> list[Exit]:
        """Stop every child in the plan's order; return how each still-running one ended."""
        ended: list[Exit] = []
        for group in stop_groups(self.children):
            runs = [self._running[c.name] for c in group if c.name in self._running]
            ended += _stop_group([r for r in runs if r.proc.poll() is None], timeout_s)
        for run in self._running.values():
            run.log.close()
        return ended


def _descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return list(psutil.Process(pid).children(recursive=True))
    return []


def _stop_group(runs: list[_Running], timeout_s: float) -> list[Exit]:
    """SIGTERM the group, wait until the deadline, SIGKILL the rest and their descendants."""
    below = [proc for run in runs for proc in _descendants(run.proc.pid)]
    for run in runs:
        with contextlib.suppress(ProcessLookupError):
            run.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while any(run.proc.poll() is None for run in runs) and time.monotonic() < deadline:
        time.sleep(_POLL_S)  # a poll interval; the condition is every process having exited
    for run in runs:
        if run.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
    _reap(below)
    ended = []
    for run in runs:
        run.reported = True
        ended.append(Exit(name=run.child.name, code=run.proc.returncode))
    return ended


def _reap(processes: list[psutil.Process]) -> None:
    """Kill descendants that outlived their parent (not ours to wait for: init reaps them)."""
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                proc.kill()
    with contextlib.suppress(psutil.Error):
        psutil.wait_procs(processes, timeout=5)
