"""The benches' one reading of the shipped ``nats.conf``'s fsync setting."""

from __future__ import annotations

from pathlib import Path

from ffrtmp.bench.harness import default_sync_config, packaged_fsync
from ffrtmp.natsd import packaged_config


def test_the_shipped_server_syncs_always() -> None:
    """What bench reports call ``fsync``: the shipped config's ``sync_interval``."""
    assert packaged_fsync() == "always"


def test_the_default_sync_config_is_the_shipped_one_without_sync_interval(tmp_path: Path) -> None:
    """Every other line is kept; only the ``sync_interval`` line goes."""
    shipped = packaged_config().read_text().splitlines()
    written = default_sync_config(tmp_path).read_text().splitlines()
    assert "sync_interval" not in "\n".join(written)
    assert written == ["" if "sync_interval" in line else line for line in shipped]
