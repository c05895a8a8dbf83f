"""``ffrtmp check`` on a real log: a farm's history passes; a forged event is named."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import msgspec
import pytest

from events.job_events import JobCompleted
from events.store import Append
from ffrtmp.check import CheckSettings, Kind
from ffrtmp.check.projection import check_projection, differences
from ffrtmp.check.read import check_store
from ffrtmp.natsd import NatsServer
from projections.follow import catch_up
from projections.runner import Projector
from projections.schema import FOLDED_TABLES
from tests.farm import Farm, scheduler

pytestmark = pytest.mark.anyio
JOBS = 6


async def _cli(url: str, prefix: str, *args: str) -> tuple[int, str, str]:
    argv = [sys.executable, "-c", "from ffrtmp.cli import main; main()", "check"]
    argv += ["--nats", url, "--prefix", prefix, *args]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_a_farm_log_passes_and_a_forged_completion_is_named(
    farm: Farm, nats_server: NatsServer, prefix: str, tmp_path: Path
) -> None:
    """Jobs run by the scheduler and agents keep every invariant; a second completion does not."""
    async with scheduler(farm.store):
        await farm.agent("a1", slots=2)
        await farm.agent("a2", slots=2)
        for i in range(JOBS):
            await farm.submit(f"job{i}")
        for i in range(JOBS):
            await farm.wait_status(f"job{i}", "completed")
    report = await check_store(farm.store, CheckSettings(quiescent=True))
    assert report.violations == []
    assert report.statuses == {"completed": JOBS}
    db = tmp_path / "farm.duckdb"
    half = Projector(db, prefix)  # a projection made in two steps, reopened in between
    await catch_up(half, farm.store.nc, max_batch=7)
    half.close()
    assert await check_projection(farm.store.nc, db, prefix) == []

    code, out, err = await _cli(nats_server.url, prefix, "--quiescent")
    assert (code, out) == (0, "")
    assert f"{JOBS} jobs (6 completed)" in err

    completed = next(e for e in await farm.history("job0") if isinstance(e, JobCompleted))
    forged = msgspec.structs.replace(completed, agent="a2" if completed.agent == "a1" else "a1")
    subject = farm.subjects.job_event("job0", forged.agent)
    seq = await farm.store.append(Append(subject=subject, event=forged, msg_id="forged"))

    code, out, _ = await _cli(nats_server.url, prefix, "--output", "json")
    assert code == 3
    violations = msgspec.json.decode(out)["violations"]
    assert [(v["kind"], v["job"], v["seq"]) for v in violations] == [
        (Kind.COMPLETED_TWICE, "job0", seq)
    ]
    code, out, _ = await _cli(nats_server.url, prefix)
    assert code == 3
    assert out.startswith(f"job job0 seq {seq}: completed_twice: JobCompleted from")


async def test_check_of_an_unreachable_server_says_so_in_one_line() -> None:
    """No server: one line naming the URL and exit 1, not a traceback and not 'violations'."""
    code, _, err = await _cli("nats://127.0.0.1:1", "ffrtmp")
    assert code == 1
    assert err.startswith("error: cannot reach NATS JetStream at nats://127.0.0.1:1")
    assert err.count("\n") == 1
    assert "Traceback" not in err


async def test_a_projection_that_differs_from_a_rebuild_is_named(farm: Farm, prefix: str) -> None:
    """A row the log does not explain, in a stored projection, is a projection violation."""
    async with scheduler(farm.store):
        await farm.agent("a1")
        await farm.submit("p1")
        await farm.wait_status("p1", "completed")
    stored, fresh = Projector(":memory:", prefix), Projector(":memory:", prefix)
    try:
        await catch_up(stored, farm.store.nc)
        await catch_up(fresh, farm.store.nc)
        tables = list(FOLDED_TABLES)
        assert differences(stored, fresh, tables) == []
        stored._con.execute("DELETE FROM job_transitions")  # corrupt the stored copy
        (violation,) = differences(stored, fresh, tables)
        assert violation.kind == Kind.PROJECTION
        assert "table job_transitions: 0 rows not in a fresh rebuild" in violation.message
    finally:
        stored.close()
        fresh.close()
