"""A child process in a process group of its own, with its output and CPU time at exit.

Signals go to the whole group, stdout lines to a callback, and a bounded tail of stderr is kept.
On Linux the child dies with the agent: ``PR_SET_PDEATHSIG`` (SIGKILL) is set between fork and
exec, so a ``kill -9`` of the agent cannot leave an FFmpeg writing while a retry runs elsewhere.
The signal follows the *thread* that started the child, so children are started from the event
loop's thread, which lives as long as the agent.

Threads do the blocking parts (reading the two pipes, waiting for the exit), so the event loop
never blocks and no asyncio child watcher is involved. The waiter first waits *without* reaping
(``waitid(WNOWAIT)``), marks the child exited under the signal lock, then reaps it with
``wait4`` for its resource usage: a signal is therefore never sent to a process id the kernel
may already have handed to someone else.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, Final

import msgspec

log = logging.getLogger(__name__)

TAIL_BYTES: Final = 64 * 1024
_CHUNK: Final = 8192
_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h
_LIBC: Final = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def signal_at_parent_death(sig: signal.Signals) -> None:
    """In a child before exec: ask the kernel for ``sig`` when its starter dies (Linux only).

    The one place that asks (``ffrtmp.lifeline`` asks with SIGTERM for the control plane's
    children); elsewhere there is nothing to ask for and this does nothing.
    """
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, sig)


def _die_with(parent: int) -> None:
    """In the child before exec: SIGKILL me when my parent dies (and now, if it already has)."""
    signal_at_parent_death(signal.SIGKILL)
    if os.getppid() != parent:  # the parent died between fork and prctl
        os._exit(1)


class Exit(msgspec.Struct, frozen=True, kw_only=True):
    """How the child ended: exit code (negative: the signal that killed it) and CPU seconds."""

    returncode: int
    cpu_s: float


def niced(argv: Sequence[str], niceness: int) -> list[str]:
    """``argv`` run through ``nice`` so every thread of it starts at the lower priority."""
    tool = shutil.which("nice")
    if niceness <= 0 or tool is None:
        return list(argv)
    return [tool, "-n", str(niceness), *argv]


class Child:
    """A started child process; ``wait`` gives its ``Exit``."""

    def __init__(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        *,
        niceness: int = 0,
        tail_bytes: int = TAIL_BYTES,
    ) -> None:
        """Start ``argv`` in a new session (its own process group) with stdin closed."""
        self._loop = asyncio.get_running_loop()
        self._ended: asyncio.Future[Exit] = self._loop.create_future()
        self._lock = threading.Lock()
        self._exited = False
        self._tail = bytearray()
        self._tail_bytes = tail_bytes
        parent = os.getpid()
        self._popen = subprocess.Popen(  # noqa: S603 - argv list built by agent.command
            niced(argv, niceness),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=lambda: _die_with(parent),  # noqa: PLW1509 - one prctl, async-signal-safe
        )
        self.pid = self._popen.pid
        assert self._popen.stdout is not None  # noqa: S101 - PIPE was asked for
        assert self._popen.stderr is not None  # noqa: S101 - PIPE was asked for
        self._readers = [
            threading.Thread(target=self._lines, args=(self._popen.stdout, on_line), daemon=True),
            threading.Thread(target=self._keep_tail, args=(self._popen.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(target=self._reap, daemon=True, name=f"reap-{self.pid}").start()

    @staticmethod
    def _lines(pipe: IO[bytes], on_line: Callable[[str], None]) -> None:
        for raw in iter(pipe.readline, b""):
            try:
                on_line(raw.decode(errors="replace"))
            except Exception:
                log.exception("progress line handler failed")

    def _keep_tail(self, pipe: IO[bytes]) -> None:
        while chunk := os.read(pipe.fileno(), _CHUNK):
            with self._lock:
                self._tail += chunk
                if len(self._tail) > self._tail_bytes:
                    del self._tail[: len(self._tail) - self._tail_bytes]

    def _reap(self) -> None:
        os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        with self._lock:
            self._exited = True
        _, status, usage = os.wait4(self.pid, 0)
        for reader in self._readers:
            reader.join()
        self._popen.returncode = os.waitstatus_to_exitcode(status)
        for pipe in (self._popen.stdout, self._popen.stderr):
            if pipe is not None:
                pipe.close()
        ended = Exit(returncode=self._popen.returncode, cpu_s=usage.ru_utime + usage.ru_stime)
        try:
            self._loop.call_soon_threadsafe(self._settle, ended)
        except RuntimeError:
            log.debug("event loop closed before child %d ended", self.pid)

    def _settle(self, ended: Exit) -> None:
        if not self._ended.done():
            self._ended.set_result(ended)

    @property
    def exited(self) -> bool:
        """Whether the process has ended (it may not be reaped yet)."""
        return self._exited

    def signal(self, sig: signal.Signals) -> bool:
        """Send ``sig`` to the whole process group; False when the process has already ended."""
        with self._lock:
            if self._exited:
                return False
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                return False
            return True

    def tail(self) -> bytes:
        """The last bytes the process wrote to stderr."""
        with self._lock:
            return bytes(self._tail)

    async def wait(self) -> Exit:
        """Its exit, once the process is reaped and both pipes are drained."""
        return await asyncio.shield(self._ended)
