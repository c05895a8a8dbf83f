"""Hostile writes on the log against a real farm: no reader dies, no forged report applies.

Anything a client manages to store stays in the log forever (the stream refuses deletes), so
every reader must read past it: junk on the scheduler's own job subject, junk an agent writes
on its own subjects, and reports forged by one agent about another's attempt. Each is set
aside (counted, listed with its sequence by ``ffrtmp check`` and the projection) and the farm
goes on completing jobs.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import msgspec
import pytest

from events.base import SetAside
from events.commands import CancelJob
from events.job_events import JobCanceled, JobCompleted, JobResults
from events.store import Append
from events.work import Dispatch
from ffrtmp.bench.simagent import Behaviour, Outcome
from ffrtmp.check import CheckSettings, Kind
from ffrtmp.check.read import check_store
from ffrtmp.cli import app, jobs
from ffrtmp.natsd import NatsServer
from projections.follow import catch_up
from projections.runner import Projector
from tests.cli_support import Cli
from tests.farm import Farm, scheduler, wait_until

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
