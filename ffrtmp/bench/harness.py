"""Running a benchmark: one embedded server in a temporary directory, interleaved rounds.

Also what several benches share: waiting on a measured condition (``until``), submitting on a
schedule (``submit_steadily``), the ``ffrtmp`` command to run, and the machine's description.

The server is the shipped one (``ffrtmp.natsd`` with the packaged ``nats.conf``); the only
other configuration is the same file without ``sync_interval``, to measure what fsync-always
costs. Each measurement is a coroutine taking the round's index and returning a rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient

from events.commands import SubmitJob
from events.errors import FfrtmpError
from events.subjects import Subjects
from ffrtmp.bench.stats import round_order
from ffrtmp.bench.workload import job_spec
from ffrtmp.client.submit import Route, submit
from ffrtmp.natsd import NatsServer, NatsSettings, find_binary, free_port, packaged_config

Measure = Callable[[int], Awaitable[float]]
"""One measurement: given the round's index, run once and return messages per second."""

_SYNC_LINE = re.compile(r"^[ \t]*sync_interval[ \t]*:[ \t]*(\S*).*$", re.MULTILINE)
POLL_S: Final = 0.005
"""How often a measurement looks at a counter."""


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


async def until(done: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``done`` (a measurement, not synchronisation) until true; past the deadline, fail."""
    deadline = time.perf_counter() + timeout_s
    while not done():
        if time.perf_counter() > deadline:
            raise FfrtmpError(f"the benchmark gave up waiting for {what} after {timeout_s:.0f} s")
        await asyncio.sleep(POLL_S)


async def submit_steadily(
    nc: NatsClient, subjects: Subjects, *, rate: float, seconds: float, warmup_s: float, tag: str
) -> dict[str, float]:
    """Submit ``SubmitJob`` on an absolute schedule (no drift); each counted job's send time.

    Each goes through the client's door (``client.submit``: asked of the leader, stored when
    none answers), as the CLI and the API send it, in a task of its own so a slow answer never
    holds the schedule back. The first ``warmup_s`` of submissions (varied specs,
    ``workload.job_spec``) go out at the same rate but are not counted.
    """
    sent: dict[str, float] = {}
    warmup = int(rate * warmup_s)
    js = nc.jetstream()
    answers: list[asyncio.Task[Route]] = []
    start = time.perf_counter()
    for i in range(warmup + int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        job = f"{tag}-{i:07d}"
        command = SubmitJob(id=f"cmd-{job}", job=job, at=time.time(), spec=job_spec(i, tag))
        at = time.perf_counter()
        answers.append(asyncio.create_task(submit(nc, js, subjects, command)))
        if i >= warmup:
            sent[job] = at
    await asyncio.gather(*answers)
    return sent


class Machine(msgspec.Struct, frozen=True, kw_only=True):
    """Where the figures were measured."""

    cpus: int
    load_average: list[float]
    platform: str
    python: str
    nats_server: str
    nats_py: str
    msgspec: str
    fsync: str


def machine() -> Machine:
    """CPUs, load, versions, and the shipped server's fsync setting."""
    version = subprocess.run(  # noqa: S603 -- our own binary, a fixed argument
        [str(find_binary()), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return Machine(
        cpus=os.cpu_count() or 0,
        load_average=[round(x, 2) for x in os.getloadavg()],
        platform=platform.platform(),
        python=platform.python_version(),
        nats_server=version,
        nats_py=importlib.metadata.version("nats-py"),
        msgspec=importlib.metadata.version("msgspec"),
        fsync=packaged_fsync(),
    )
