"""Child processes of ``ffrtmp up``: start them, notice when one dies, stop them all in order.

The I/O half of the one-command farm (``ffrtmp.farm`` is the pure plan). Each child runs in its
own session, so a terminal's Ctrl-C reaches ``up`` alone and ``up`` stops the children in the
plan's order: SIGTERM to a group (all agents at once, then the scheduler, …), a wait with a
deadline, then SIGKILL to whatever is left of the group's process groups. Descendants (an
agent's FFmpeg runs in a process group of its own) are noted before the SIGTERM and killed if
they outlive their parent, so a stop leaves no process behind.

A child that dies is reported once by ``poll`` and restarted by the restart policy
(``ffrtmp.restart``: a doubling delay, a start limit, ``--no-restart`` to opt out); ``poll``
also starts the children whose delay is over, and ``state`` says where each one stands. On
Linux each child asks the kernel for a SIGTERM when ``up`` itself dies (``ffrtmp.lifeline``),
so even ``kill -9`` of ``up`` leaves no farm running without it; that signal follows the
*thread* that started the child, so ``start`` and ``poll`` run on the main thread.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final

import msgspec
import psutil

from ffrtmp.farm import Child, stop_groups
from ffrtmp.lifeline import PREEXEC
from ffrtmp.restart import Decision, GiveUp, History, Restart, RestartPolicy, after_death, started

_POLL_S: Final = 0.05


class Exit(msgspec.Struct, frozen=True, kw_only=True):
    """A child that ended, and how."""

    name: str
    code: int
    then: Decision | None = None
    """What the restart policy decided (None while stopping)."""

    def describe(self) -> str:
        """``exited with code 1`` or ``killed by SIGKILL``."""
        if self.code < 0:
            with contextlib.suppress(ValueError):
                return f"killed by {signal.Signals(-self.code).name}"
        return f"exited with code {self.code}"


class Restarted(msgspec.Struct, frozen=True, kw_only=True):
    """A child started again after it died."""

    name: str
    pid: int
    number: int


class _Running:
    def __init__(self, child: Child, proc: subprocess.Popen[bytes], log: IO[bytes]) -> None:
        self.child, self.proc, self.log = child, proc, log
        self.reported = False
        self.history = History()
        self.last: Exit | None = None
        self.due: float | None = None  # when a restart is due (monotonic)


class Supervisor:
    """The children of one farm; ``start`` them, ``poll`` for deaths, ``stop`` them all."""

    def __init__(
        self,
        children: list[Child],
        log_dir: Path,
        env: dict[str, str],
        policy: RestartPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Remember what to run; ``env`` is the children's whole environment."""
        self.children = children
        self.log_dir = log_dir
        self.env = {**env, "PYTHONUNBUFFERED": "1"}  # their logs read live, line by line
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self._running: dict[str, _Running] = {}

    def log_path(self, name: str) -> Path:
        """Where a child's stdout and stderr go."""
        return self.log_dir / f"{name}.log"

    def start(self) -> None:
        """Spawn every child without waiting for any (readiness is the caller's condition)."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for child in self.children:
            log = self.log_path(child.name).open("ab")
            run = self._running[child.name] = _Running(child, self._spawn(child, log), log)
            run.history = started(run.history, self._clock(), self.policy)

    def _spawn(self, child: Child, log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 -- our own CLI, argv from the plan
            child.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            preexec_fn=PREEXEC,  # noqa: PLW1509 -- async-signal-safe: one prctl call
        )

    def pids(self) -> dict[str, int]:
        """Each started child's process id."""
        return {name: run.proc.pid for name, run in self._running.items()}

    def alive(self, name: str) -> bool:
        """Whether the child is running."""
        run = self._running.get(name)
        return run is not None and run.proc.poll() is None

    def poll(self) -> list[Exit | Restarted]:
        """Children that ended since the last call (each death reported once), and restarts.

        A death is decided on by the restart policy at once (``Exit.then``); a child whose
        restart delay is over is started again here, and reported as ``Restarted``.
        """
        now, changes = self._clock(), list[Exit | Restarted]()
        for name, run in self._running.items():
            code = run.proc.poll()
            if code is not None and not run.reported:
                decision, run.history = after_death(run.history, now, self.policy)
                run.reported, run.last = True, Exit(name=name, code=code, then=decision)
                run.due = now + decision.after_s if isinstance(decision, Restart) else None
                changes.append(run.last)
            elif run.due is not None and now >= run.due:
                changes.append(self._restart(run, now))
        return changes

    def _restart(self, run: _Running, now: float) -> Restarted:
        number = run.history.count  # the restart this start is
        why = run.last.describe() if run.last is not None else "ended"
        run.log.write(f"--- ffrtmp up: restart {number} ({why}) ---\n".encode())
        run.log.flush()  # the new process appends after the mark
        run.proc, run.reported, run.due = self._spawn(run.child, run.log), False, None
        run.history = started(run.history, now, self.policy)
        return Restarted(name=run.child.name, pid=run.proc.pid, number=number)

    def restarts(self, name: str) -> int:
        """How many times the child was started again."""
        run = self._running.get(name)
        return 0 if run is None else max(0, run.history.count - 1)

    def state(self, name: str) -> str:
        """``up``, ``restarting in 4 s (killed by SIGKILL)`` or ``down: … (why)``."""
        run = self._running.get(name)
        if run is None:
            return "not started"
        code = run.proc.poll()
        if code is None:
            return "up"
        last = run.last if run.reported and run.last is not None else Exit(name=name, code=code)
        if run.due is not None:
            left = max(0.0, run.due - self._clock())
            return f"restarting in {left:.0f} s ({last.describe()})"
        why = last.then.why if isinstance(last.then, GiveUp) else "not restarted"
        return f"down: {last.describe()} ({why})"

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
            for run in runs:
                run.due = None  # no restart once stopping
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
