"""Hostile writes on the log against a real farm: no reader dies, no forged report applies.

Anything a client manages to store stays in the log forever (the stream refuses deletes), so
every reader must read past it: junk on the scheduler's own job subject, junk an agent writes
on its own subjects, and reports forged by one agent about another's attempt. Each is set
aside (counted, listed with its sequence by ``ffrtmp check`` and the projection) and the farm
goes on completing jobs.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import msgspec
import pytest

from events.base import SetAside
from events.codec import encode
from events.commands import CancelJob
from events.job_events import JobCanceled, JobCompleted, JobQueued, JobResults, JobStarted
from events.store import Append
from events.subjects import Subjects
from events.work import Dispatch
from ffrtmp.check import CheckSettings, Kind
from ffrtmp.check.projection import differences
from ffrtmp.check.read import check_store
from ffrtmp.cli import app, jobs
from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.snapshots import Snapshot, SnapshotStore
from projections.follow import catch_up
from projections.runner import Projector
from projections.schema import FOLDED_TABLES
from tests.cli_support import Cli
from tests.farm import Farm, scheduler, wait_until
from tests.simagent import Behaviour, Outcome

pytestmark = pytest.mark.anyio


@pytest.fixture
def cli(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Cli:
    """The CLI pointed at this test's server and prefix."""
    return Cli(nats_server.url, prefix, tmp_path)


async def _store_raw(farm: Farm, subject: str, data: bytes) -> int:
    """Store bytes on the events stream as any client with publish rights can; the sequence."""
    return int((await farm.js.publish(subject, data)).seq)


async def test_junk_on_the_log_stops_no_reader(farm: Farm, cli: Cli, prefix: str) -> None:
    """Junk stored before and while the scheduler runs is read past by every reader.

    The scheduler recovers and follows past it and jobs complete; check, the projection,
    ``jobs list --local``, ``top`` and ``events`` list it or skip it.
    """
    s = farm.subjects
    junk = [
        await _store_raw(farm, s.job_event("x", "sched"), b"not json"),
        await _store_raw(farm, s.job_event("y", "a1"), b'{"type":"JobCompleted"}'),
        await _store_raw(farm, s.agent_event("a9"), b"\xff\xfe"),
    ]
    async with scheduler(farm.store) as sched:
        await farm.agent("a1")
        await farm.submit("ok1")
        junk.append(await _store_raw(farm, s.job_event("ok1", "sched"), b"{"))
        await farm.wait_status("ok1", "completed")
        await farm.submit("ok2")
        await farm.wait_status("ok2", "completed")

        async def counted() -> bool:
            return sched.stats.set_aside == len(junk)

        await wait_until(counted, "the scheduler to count every set-aside event")

        listed = await cli(jobs.app, "list", "--local", "-o", "json")
        assert listed.exit_code == 0, listed.output
        assert {row["id"] for row in json.loads(listed.stdout)} == {"ok1", "ok2"}
        top = await cli(app, "top", "--once")
        assert top.exit_code == 0, top.output
        events = await cli(app, "events", "replay", "-o", "json")
        assert events.exit_code == 0, events.output
        types = {json.loads(line)["type"] for line in events.stdout.splitlines()}
        assert "SetAside(malformed)" in types

    report = await check_store(farm.store, CheckSettings(quiescent=True))
    flagged = [(v.kind, v.seq) for v in report.violations]
    assert flagged == [(Kind.SET_ASIDE, seq) for seq in junk]
    assert report.statuses == {"completed": 2}
    checked = await cli(app, "check", "--nats", str(cli.env["FFRTMP_NATS_URL"]), "--prefix", prefix)
    assert checked.exit_code == 3
    for seq in junk:
        assert f"seq {seq}: set_aside: malformed: does not decode" in checked.stdout

    projector = Projector(":memory:", prefix)
    try:
        await catch_up(projector, farm.store.nc)
        rows = projector.query("SELECT seq, kind FROM set_aside_events ORDER BY seq").rows
        assert rows == [[seq, "malformed"] for seq in junk]
        assert projector.query("SELECT count(*) FROM jobs WHERE status = 'completed'").rows == [[2]]
    finally:
        projector.close()


async def test_a_forged_completion_changes_nothing(farm: Farm, cli: Cli, prefix: str) -> None:
    """Another agent's completion of a running job changes nothing for any reader.

    a2 completes a1's attempt on its own subject, as itself and then naming a1: the job stays
    running, check names both, and a1's own cancel still lands.
    """
    hold = Behaviour(outcome=Outcome.HANG, run_s=0.05)

    def plan(dispatch: Dispatch) -> Behaviour:
        return hold if dispatch.job == "job" else Behaviour(run_s=0.05)

    async with scheduler(farm.store) as sched:
        await farm.agent("a1", behaviour=plan)
        await farm.submit("job")
        running = await farm.wait_status("job", "running")
        results = JobResults(wall_s=1.0)
        as_itself = JobCompleted(
            job="job", at=1.0, agent="a2", attempt=running.attempt, results=results
        )
        naming_a1 = msgspec.structs.replace(as_itself, agent="a1")
        subject = farm.subjects.job_event("job", "a2")
        seqs = [
            await farm.store.append(Append(subject=subject, event=e, msg_id=f"forged{i}"))
            for i, e in enumerate([as_itself, naming_a1])
        ]
        loaded = await farm.store.load("job")
        assert isinstance(loaded.events[-1][1], SetAside)
        assert (await farm.state("job")).status == "running"

        async def seen() -> bool:
            return sched.core.covered >= seqs[-1]

        await wait_until(seen, "the scheduler to read the forged events")
        state = sched.core.state_of("job")
        assert state is not None
        assert (state.status, state.agent) == ("running", "a1")
        projector = Projector(":memory:", prefix)
        try:
            await catch_up(projector, farm.store.nc)
            assert projector.query("SELECT status FROM jobs").rows == [["running"]]
            kinds = projector.query("SELECT seq, kind FROM set_aside_events ORDER BY seq").rows
            assert kinds == [[seqs[0], "not_holder"], [seqs[1], "forged"]]
        finally:
            projector.close()
        listed = await cli(jobs.app, "list", "--local", "-o", "json")
        assert [row["status"] for row in json.loads(listed.stdout)] == ["running"]

        report = await check_store(farm.store)
        assert [(v.kind, v.seq) for v in report.violations] == [
            (Kind.WRONG_AGENT, seqs[0]),
            (Kind.SET_ASIDE, seqs[1]),
        ]
        await farm.send(CancelJob(id=farm.command_id(), job="job", at=time.time()))
        await farm.wait_status("job", "canceled")
        ended = (await farm.history("job"))[-1]
        assert isinstance(ended, JobCanceled)
        assert ended.agent == "a1"  # the holder's own report still lands
        await farm.submit("after")
        await farm.wait_status("after", "completed")


def _damaged_events(seed: int, size: int, subjects: Subjects) -> list[tuple[str, bytes]]:
    """Valid events damaged at random, on the subjects a hostile writer can reach."""
    rng = random.Random(seed)  # noqa: S311 -- a reproducible corpus, not a secret
    results = JobResults(wall_s=1.0)
    valid = [
        encode(JobCompleted(job="j0", at=1.0, agent="a2", attempt=1, results=results)),
        encode(JobQueued(job="j0", at=1.0)),
        encode(JobStarted(job="j0", at=1.0, agent="a2", attempt=1)),
        encode(JobCanceled(job="j0", at=1.0, agent="a1")),
    ]
    places = [
        subjects.job_event("j0", "sched"),
        subjects.job_event("j0", "a2"),
        subjects.job_event("zz", "a2"),
        subjects.agent_event("a2"),
    ]
    corpus: list[tuple[str, bytes]] = []
    while len(corpus) < size:
        data = bytearray(rng.choice(valid))
        match rng.randrange(6):
            case 0:
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            case 1:
                del data[rng.randrange(len(data)) :]
            case 2:
                data = bytearray(data.replace(b'"v":1', b'"v":9'))
            case 3:
                data = bytearray(data[:-1] + b',"x":' + b"[" * 5000 + b"]" * 5000 + b"}")
            case 4:
                data = bytearray(rng.randbytes(rng.randrange(1, 64)))
            case _:
                pass  # whole, on a subject its writer may not use
        corpus.append((rng.choice(places), bytes(data)))
    return corpus


@pytest.mark.timeout(300)
async def test_a_damaged_event_corpus_stops_nothing_and_loses_nothing(
    farm: Farm, prefix: str
) -> None:
    """200 damaged or misplaced events (seeded) among real work stop nothing and lose nothing.

    Every job ends, every stored message stays readable, the projection equals a rebuild, and
    check names the junk.
    """
    corpus = _damaged_events(seed=13, size=200, subjects=farm.subjects)
    async with scheduler(farm.store) as sched:
        await farm.agent("a1", slots=2)
        for i in range(6):
            await farm.submit(f"j{i}")
        for subject, data in corpus:
            await _store_raw(farm, subject, data)
        for i in range(6, 10):
            await farm.submit(f"j{i}")
        for i in range(10):
            await farm.wait_status(f"j{i}", "completed", "canceled")
        last = await farm.store.last_seq()

        async def caught_up() -> bool:
            return sched.core.covered >= last

        await wait_until(caught_up, "the scheduler to read past the corpus")
    seqs = [seq async for seq, _ in farm.store.replay()]
    assert seqs == list(range(1, last + 1))  # nothing stored is lost or unreadable
    report = await check_store(farm.store)
    set_aside = [v for v in report.violations if v.kind == Kind.SET_ASIDE]
    others = [v for v in report.violations if v.kind != Kind.SET_ASIDE]
    assert set_aside, "the corpus holds junk check must name"
    assert all(v.kind == Kind.WRONG_AGENT or v.job in {"j0", "zz"} for v in others), others
    stored, fresh = Projector(":memory:", prefix), Projector(":memory:", prefix)
    try:
        await catch_up(stored, farm.store.nc, max_batch=17)
        await catch_up(fresh, farm.store.nc)
        assert differences(stored, fresh, list(FOLDED_TABLES)) == []
        counted = stored.status().malformed_events
        assert counted == len(set_aside)
    finally:
        stored.close()
        fresh.close()


async def test_a_snapshot_nested_past_the_decoders_limit_is_replayed_around(farm: Farm) -> None:
    """A snapshot whose payload nests 100,000 deep is unreadable, not fatal.

    Anyone with rights to the bucket can write one; the scheduler replays the log instead.
    """
    await farm.submit("before")
    snapshots = SnapshotStore(farm.js, farm.subjects)
    await snapshots.open()
    deep = b"\x81\xa1x" + b"\x91" * 100_000 + b"\xc0"  # msgpack {"x": [[[...nil...]]]}
    await snapshots.save(Snapshot(covered_seq=1, taken_at=1.0, payload=deep))
    await farm.agent("a1")
    async with scheduler(farm.store) as sched:
        await farm.wait_status("before", "completed")
        await farm.submit("after")
        await farm.wait_status("after", "completed")
        assert sched.stats.replayed >= 1  # from the log's start, not the snapshot
