"""Running a benchmark: one embedded server in a temporary directory, interleaved rounds.

The server is the shipped one (``ffrtmp.natsd`` with the packaged ``nats.conf``); the only
other configuration is the same file without ``sync_interval``, to measure what fsync-always
costs. Each measurement is a coroutine taking the round's index and returning a rate.
"""

from __future__ import annotations

import contextlib
import re
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path

from ffrtmp.bench.stats import round_order
from ffrtmp.natsd import NatsServer, NatsSettings, free_port, packaged_config

Measure = Callable[[int], Awaitable[float]]
"""One measurement: given the round's index, run once and return messages per second."""

_SYNC_LINE = re.compile(r"^[ \t]*sync_interval[ \t]*:[ \t]*(\S*).*$", re.MULTILINE)


def packaged_fsync() -> str:
    """The shipped server's ``sync_interval`` (``always``), or ``default`` where it sets none."""
    found = _SYNC_LINE.search(packaged_config().read_text())
    return found.group(1) if found and found.group(1) else "default"


def default_sync_config(directory: Path) -> Path:
    """The packaged ``nats.conf`` without ``sync_interval``: the server's default fsync."""
    text = packaged_config().read_text()
    if not _SYNC_LINE.search(text):
        raise ValueError(f"{packaged_config()} sets no sync_interval to take out")
    path = directory / "nats-default-sync.conf"
    path.write_text(_SYNC_LINE.sub("", text))
    return path


@contextlib.asynccontextmanager
async def embedded_server(*, default_sync: bool = False) -> AsyncIterator[NatsServer]:
    """A fresh server on a free loopback port with its store in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="ffrtmp-bench-") as tmp:
        config = str(default_sync_config(Path(tmp))) if default_sync else None
        settings = NatsSettings(
            port=free_port(), store_dir=str(Path(tmp) / "nats"), host="127.0.0.1", config=config
        )
        async with NatsServer(settings) as server:
            yield server


async def interleaved(rounds: int, measures: Mapping[str, Measure]) -> dict[str, list[float]]:
    """Every measurement once per round, in an order that alternates; the rates by name."""
    rates: dict[str, list[float]] = {name: [] for name in measures}
    for index in range(rounds):
        for name in round_order(index, list(measures)):
            rates[name].append(await measures[name](index))
    return rates


def ffrtmp_command() -> list[str]:
    """The installed ``ffrtmp`` beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("ffrtmp")
    return [str(script)] if script.exists() else [sys.executable, "-m", "ffrtmp.cli"]
