"""SIGKILL a real ``ffrtmp projector run`` mid-stream: after a restart every table equals a rebuild.

Each batch and its checkpoint commit in one DuckDB transaction, so a kill at any point loses
no event and applies none twice. The process is killed while it is catching up on a backlog and
while events keep arriving, several times, then left to finish; its database must then hold
exactly what a fresh rebuild from the log holds.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from ffrtmp.natsd import NatsServer
from projections import Projector, catch_up
from projections.service import ask
from tests.farm import wait_until
from tests.integration.test_projector_service import fill
from tests.projection_support import ProjectorProcess, snapshot

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
BACKLOG_JOBS = 3_000
KILLS = 3
STRIDE = 3_000  # events applied between kills, so they land at different points of the log


@pytest.fixture
def projector_process(
    nats_server: NatsServer, prefix: str, tmp_path: Path
) -> Iterator[ProjectorProcess]:
    """The process of this test, killed at the end whatever happens."""
    proc = ProjectorProcess(nats_server.url, prefix, tmp_path / "farm.duckdb", tmp_path)
    yield proc
    proc.kill()


async def checkpoint(store: JetStreamEventStore) -> int:
    """The running projector's checkpoint, asked over NATS; -1 while none answers."""
    try:
        reply = await ask(store.nc, store.subjects, "SELECT seq FROM _checkpoint", timeout_s=2)
    except FfrtmpError:
        return -1
    assert reply.result is not None
    return int(reply.result.rows[0][0])


async def test_sigkill_mid_stream_loses_and_doubles_nothing(
    jetstream_store: JetStreamEventStore, projector_process: ProjectorProcess
) -> None:
    """Killed while catching up and while following, restarted, it ends equal to a rebuild."""
    await fill(jetstream_store, jobs=BACKLOG_JOBS)
    stop = asyncio.Event()
    appending = asyncio.create_task(_keep_appending(jetstream_store, stop))
    seen = 0
    for _ in range(KILLS):
        projector_process.start()
        seen = await _wait_past(jetstream_store, seen)
        projector_process.kill()
    stop.set()
    jobs, last = await appending
    projector_process.start()

    async def finished() -> bool:
        return await checkpoint(jetstream_store) == last

    await wait_until(finished, "the restarted projector to reach the end of the log", 120)
    projector_process.kill(signal.SIGTERM)

    survivor = Projector(projector_process.db, jetstream_store.subjects.prefix)
    fresh = Projector(":memory:", jetstream_store.subjects.prefix)
    try:
        await catch_up(fresh, jetstream_store.nc)
        assert not survivor.rebuilt
        assert snapshot(survivor) == snapshot(fresh)
        stored = survivor.query("SELECT count(*) FROM jobs").rows[0][0]
    finally:
        survivor.close()
        fresh.close()
    assert stored == BACKLOG_JOBS + jobs


async def _keep_appending(store: JetStreamEventStore, stop: asyncio.Event) -> tuple[int, int]:
    """Whole histories, 50 jobs at a time, until ``stop``; jobs written and the last sequence."""
    jobs, last = 0, 0
    while not stop.is_set():
        last = await fill(store, jobs=50, first=BACKLOG_JOBS + jobs)
        jobs += 50
    return jobs, last


async def _wait_past(store: JetStreamEventStore, seen: int) -> int:
    """Until the running projector's checkpoint is ``STRIDE`` past ``seen``; the checkpoint."""
    now = -1

    async def moved() -> bool:
        nonlocal now
        now = await checkpoint(store)
        return now > seen + STRIDE

    await wait_until(moved, f"the projector to apply past {seen}", 60)
    return now
