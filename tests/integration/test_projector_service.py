"""The projector on a real nats-server: it follows the log, and answers read-only SQL only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from events.agent_events import AgentRegistered
from events.jetstream import JetStreamEventStore
from events.store import Append
from ffrtmp.bench.workload import EVENTS_PER_JOB, T0, job_id, step
from projections import Projector, QueryFailed, QueryRefused, follow
from projections.service import SERVICE_NAME, ask, serve
from tests.farm import CPU, wait_until
from tests.projection_support import snapshot

pytestmark = pytest.mark.anyio
JOBS = 30


async def fill(store: JetStreamEventStore, jobs: int = JOBS, first: int = 0) -> int:
    """Whole histories of ``jobs`` jobs and one agent registration; the last sequence."""
    subjects = store.subjects
    names = [job_id("p", i) for i in range(first, first + jobs)]
    last = dict.fromkeys(names, 0)
    for index in range(EVENTS_PER_JOB):
        items = [step(subjects, job, index, T0, last[job]) for job in names]
        for job, seq in zip(names, await store.append_many(items), strict=True):
            assert isinstance(seq, int)
            last[job] = seq
    event = AgentRegistered(agent="agent-7", at=T0, capabilities=CPU, slots=2)
    subject = subjects.agent_event("agent-7")
    return await store.append(Append(subject=subject, event=event, msg_id=f"reg-{first}"))


@contextlib.asynccontextmanager
async def running(store: JetStreamEventStore, db: Path) -> AsyncIterator[Projector]:
    """A projector following the store's log into ``db`` and serving SQL, in this process."""
    projector = Projector(db, store.subjects.prefix)
    service = await serve(store.nc, projector)
    task = asyncio.create_task(follow(projector, store.nc))
    try:
        yield projector
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.stop()
        projector.close()


async def caught_up(projector: Projector, seq: int) -> None:
    """Wait until the projector has applied ``seq``."""

    async def there() -> bool:
        return projector.checkpoint() >= seq

    await wait_until(there, f"the projector to reach {seq}")


async def test_follows_the_log_and_answers_sql(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """Events appended before and while it runs are queryable through the SQL service."""
    last = await fill(jetstream_store)
    async with running(jetstream_store, tmp_path / "p.duckdb") as projector:
        await caught_up(projector, last)
        last = await fill(jetstream_store, first=JOBS)
        await caught_up(projector, last)
        reply = await ask(
            jetstream_store.nc,
            jetstream_store.subjects,
            "SELECT status, count(*) AS n FROM jobs GROUP BY status",
        )
    assert reply.result is not None
    assert reply.result.columns == ["status", "n"]
    assert reply.result.types == ["VARCHAR", "BIGINT"]
    assert reply.result.rows == [["completed", 2 * JOBS]]
    assert reply.checkpoint == last


async def test_big_results_are_capped_with_a_flag(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """A result past the row limit comes back cut to the limit, marked truncated."""
    last = await fill(jetstream_store)
    async with running(jetstream_store, tmp_path / "p.duckdb") as projector:
        await caught_up(projector, last)
        reply = await ask(
            jetstream_store.nc, jetstream_store.subjects, "SELECT * FROM jobs", limit=7
        )
        whole = await ask(
            jetstream_store.nc, jetstream_store.subjects, "SELECT job FROM jobs", limit=JOBS
        )
    assert reply.result is not None
    assert whole.result is not None
    assert (len(reply.result.rows), reply.result.truncated) == (7, True)
    assert (len(whole.result.rows), whole.result.truncated) == (JOBS, False)


REFUSED = [
    "INSERT INTO jobs (job) VALUES ('x')",
    "UPDATE jobs SET status = 'failed'",
    "DELETE FROM jobs",
    "CREATE TABLE evil (a INT)",
    "DROP TABLE jobs",
    "DROP VIEW queue_depth",
    "ALTER TABLE jobs ADD COLUMN evil INT",
    "ATTACH '/tmp/evil.duckdb' AS evil",
    "COPY jobs TO '/tmp/evil.csv'",
    "PRAGMA enable_profiling",
    "SET threads = 1",
    "INSTALL httpfs",
    "LOAD httpfs",
    "CHECKPOINT",
    "SELECT 1; DELETE FROM jobs",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_parquet('/tmp/x.parquet')",
    "SELECT * FROM glob('/etc/*')",
]


async def test_writes_ddl_and_file_access_are_refused(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """Every statement that writes, changes the schema or reaches a file is refused; no change."""
    last = await fill(jetstream_store)
    async with running(jetstream_store, tmp_path / "p.duckdb") as projector:
        await caught_up(projector, last)
        before = snapshot(projector)
        for sql in REFUSED:
            with pytest.raises(QueryRefused, match=r"refused: .*read-only SELECT") as caught:
                await ask(jetstream_store.nc, jetstream_store.subjects, sql)
            assert "\n" not in str(caught.value), sql
        assert snapshot(projector) == before
        tables = projector.query("SELECT table_name FROM duckdb_tables() ORDER BY 1").rows
    assert ["evil"] not in tables


async def test_a_syntax_error_is_one_line_with_its_position(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """DuckDB's error comes back as one line naming the line and column."""
    last = await fill(jetstream_store, jobs=1)
    async with running(jetstream_store, tmp_path / "p.duckdb") as projector:
        await caught_up(projector, last)
        with pytest.raises(QueryFailed) as caught:
            await ask(jetstream_store.nc, jetstream_store.subjects, "SELECT job FROM jobs WHER 1")
        with pytest.raises(QueryFailed, match="nope"):
            await ask(jetstream_store.nc, jetstream_store.subjects, "SELECT nope FROM jobs")
    message = str(caught.value)
    assert "\n" not in message
    assert "syntax error" in message
    assert message.endswith("(at line 1, column 27)")


async def test_service_is_discoverable_and_shared_by_a_queue_group(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """Two projectors answer $SRV.PING and split the requests between them."""
    last = await fill(jetstream_store, jobs=2)
    nc = jetstream_store.nc
    async with (
        running(jetstream_store, tmp_path / "a.duckdb") as one,
        running(jetstream_store, tmp_path / "b.duckdb") as two,
    ):
        await caught_up(one, last)
        await caught_up(two, last)
        inbox = nc.new_inbox()
        sub = await nc.subscribe(inbox)
        await nc.publish(f"$SRV.PING.{SERVICE_NAME}", b"", reply=inbox)
        pongs = [msgspec.json.decode((await sub.next_msg(timeout=5)).data) for _ in range(2)]
        for _ in range(20):
            await ask(nc, jetstream_store.subjects, "SELECT count(*) FROM jobs")
        await nc.publish(f"$SRV.STATS.{SERVICE_NAME}", b"", reply=inbox)
        stats = [msgspec.json.decode((await sub.next_msg(timeout=5)).data) for _ in range(2)]
    assert {pong["name"] for pong in pongs} == {SERVICE_NAME}
    served = [s["endpoints"][0]["num_requests"] for s in stats]
    assert sum(served) == 20
    assert all(n > 0 for n in served)


async def test_the_wire_reply_has_only_the_keys_of_its_kind(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """An answer carries result and checkpoint, no error keys; an error, error and kind only."""
    last = await fill(jetstream_store, jobs=1)
    subject = f"{jetstream_store.subjects.prefix}.api.sql"
    nc = jetstream_store.nc
    async with running(jetstream_store, tmp_path / "p.duckdb") as projector:
        await caught_up(projector, last)
        good = await nc.request(subject, b'{"sql": "SELECT 42 AS answer"}', timeout=10)
        bad = await nc.request(subject, b'{"sql": "DROP TABLE jobs"}', timeout=10)
    answer, refusal = msgspec.json.decode(good.data), msgspec.json.decode(bad.data)
    assert set(answer) == {"result", "checkpoint"}
    assert answer["result"]["rows"] == [[42]]
    assert set(refusal) == {"error", "kind"}
    assert refusal["kind"] == "refused"
