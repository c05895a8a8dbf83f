"""Whatever happens to schedulers, no job is lost, assigned twice or run twice.

Schedulers here are real ``ffrtmp scheduler run`` processes killed with SIGKILL mid-stream;
the forced split brain runs two leaders in this process without a lease.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from events.enums import FailureReason, JobStatus
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job_events import JobAssigned, JobCompleted, JobRetrying
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.lease import Lease
from tests.farm import FAST, Farm, scheduler, wait_until

pytestmark = pytest.mark.anyio
S = JobStatus
JOBS = 30


class Processes:
    """``ffrtmp scheduler run`` processes of one test, killed at the end whatever happens."""

    def __init__(self, url: str, prefix: str, logs: Path) -> None:
        self.url, self.prefix, self.logs = url, prefix, logs
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        command = [
            sys.executable,
            "-c",
            "from ffrtmp.cli import main; main()",
            "scheduler",
            "run",
            *("--nats", self.url, "--prefix", self.prefix, "--name", name),
            *("--lease-ttl-s", "1.5", "--ack-wait-s", "2", "--snapshot-every-s", "1"),
        ]
        with (self.logs / f"{name}.log").open("ab") as log:  # the child keeps its own copy
            self.running[name] = subprocess.Popen(  # noqa: S603 -- our own CLI
                command, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self, name: str) -> None:
        """SIGKILL: no lease release, no goodbye."""
        process = self.running.pop(name)
        process.kill()
        process.wait()

    def close(self) -> None:
        for name in list(self.running):
            self.kill(name)


@pytest.fixture
def processes(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Iterator[Processes]:
    """Scheduler processes on this test's prefix, logging under its temp dir."""
    procs = Processes(nats_server.url, prefix, tmp_path)
    yield procs
    procs.close()


async def _leader(farm: Farm) -> str | None:
    lease = Lease(farm.js, farm.subjects, "observer")
    await lease.open()
    return await lease.holder()


async def _wait_leader(farm: Farm, *names: str) -> str:
    found: list[str] = []

    async def leads() -> bool:
        holder = await _leader(farm)
        if holder in names:
            found.append(holder)
            return True
        return False

    await wait_until(leads, f"one of {names} to lead")
    return found[-1]


async def _check_exactly_once(farm: Farm, jobs: list[str]) -> None:
    """Every job completed once, each attempt assigned once, no attempt executed twice."""
    for job in jobs:
        await farm.wait_status(job, S.COMPLETED)
    for job in jobs:
        history = await farm.history(job)
        attempts = [e.attempt for e in history if isinstance(e, JobAssigned)]
        assert len(attempts) == len(set(attempts)), (job, attempts)
        assert sum(isinstance(e, JobCompleted) for e in history) == 1
    runs = [key for agent in farm.agents for key in agent.executions]
    assert len(runs) == len(set(runs))
    assert {job for job, _ in runs} == set(jobs)


async def _submit_stream(farm: Farm, jobs: list[str], killed: asyncio.Event, kill_at: int) -> None:
    for n, job in enumerate(jobs):
        await farm.submit(job)
        if n == kill_at:
            await asyncio.wait_for(killed.wait(), 30)
        await asyncio.sleep(0.01)  # a steady stream, not a burst


async def test_kill_9_mid_stream_and_restart_loses_nothing(
    farm: Farm, processes: Processes
) -> None:
    """SIGKILL the only scheduler halfway through a stream; a new one replays and finishes."""
    for name in ("a1", "a2", "a3"):
        await farm.agent(name, slots=2)
    processes.start("first")
    await _wait_leader(farm, "first")
    jobs = [f"k{n:02d}" for n in range(JOBS)]
    killed = asyncio.Event()
    stream = asyncio.create_task(_submit_stream(farm, jobs, killed, JOBS // 2))
    await wait_until(lambda: _assigned_some(farm, jobs[:5]), "work under way")
    processes.kill("first")
    killed.set()
    processes.start("second")
    await _wait_leader(farm, "second")
    await stream
    await _check_exactly_once(farm, jobs)


async def _assigned_some(farm: Farm, jobs: list[str]) -> bool:
    for job in jobs:
        if "JobAssigned" in await farm.kinds(job):
            return True
    return False


async def test_standby_takes_over_when_the_leader_is_killed(
    farm: Farm, processes: Processes
) -> None:
    """Two schedulers: one leads, one follows warm; SIGKILL the leader, the other leads."""
    for name in ("a1", "a2"):
        await farm.agent(name, slots=2)
    processes.start("one")
    await _wait_leader(farm, "one")
    processes.start("two")
    jobs = [f"s{n:02d}" for n in range(JOBS)]
    killed = asyncio.Event()
    stream = asyncio.create_task(_submit_stream(farm, jobs, killed, JOBS // 3))
    await wait_until(lambda: _assigned_some(farm, jobs[:3]), "work under way")
    processes.kill("one")
    killed.set()
    assert await _wait_leader(farm, "two") == "two"
    await stream
    await _check_exactly_once(farm, jobs)


async def test_two_leaders_at_once_never_assign_a_job_twice(
    farm: Farm, nats_server: NatsServer
) -> None:
    """Split brain forced: two leaders without a lease decide on one log; the check fences."""
    for name in ("a1", "a2", "a3"):
        await farm.agent(name, slots=2)
    jobs = [f"b{n:02d}" for n in range(JOBS)]
    for job in jobs:
        await farm.submit(job)
    unleased = msgspec.structs.replace(FAST, use_lease=False)
    other = await JetStreamEventStore.connect(nats_server.url, farm.subjects)
    async with (
        other,
        scheduler(farm.store, unleased, "left") as left,
        scheduler(other, unleased, "right") as right,
    ):
        assert left.leading.is_set()
        assert right.leading.is_set()
        await _check_exactly_once(farm, jobs)
    # Two leaders each count free slots from their own view, so between them they may give
    # an agent more than it has: the agent refuses (resource_error) and the job retries.
    # That costs an attempt, never a double run: every retry is for that reason alone.
    for job in jobs:
        history = await farm.history(job)
        reasons = {e.reason for e in history if isinstance(e, JobRetrying)}
        assert reasons <= {FailureReason.RESOURCE_ERROR}, (job, reasons)


async def test_the_farm_resumes_after_the_nats_server_is_killed(
    private_nats_server: NatsServer, prefix: str
) -> None:
    """SIGKILL nats-server under a running farm; after its restart, work goes on unaided."""
    async with private_nats_server as server:
        store = await JetStreamEventStore.connect(
            server.url, Subjects(prefix), ensure=True, lease_ttl_s=1.5
        )
        farm = Farm(store)
        try:
            await farm.agent("a1", slots=2)
            async with store, scheduler(store) as sched:
                await farm.submit("before")
                await farm.wait_status("before", S.COMPLETED)
                server.kill()
                await server.arestart()
                await wait_until(_reachable(farm), "the store to reconnect")
                await farm.submit("after")
                await farm.wait_status("after", S.COMPLETED)
                assert sched.leading.is_set()
        finally:
            await farm.close()


def _reachable(farm: Farm) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        try:
            await farm.store.last_seq()
        except FfrtmpError:
            return False
        return True

    return check
