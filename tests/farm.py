"""A small farm for scheduler tests: a real nats-server, the scheduler, simulated agents.

Everything speaks the real protocol: commands go through the client's door (a submit asked of
the leader, the rest onto the commands stream), agents register, heartbeat, pull dispatches
from their durable consumers and append their reports under the per-job concurrency check.
Waiting is always on a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from events.agent_events import Capabilities, GpuInfo
from events.base import JobEventBase
from events.command_message import command_message
from events.commands import OperatorCommand, SubmitJob
from events.jetstream import JetStreamEventStore
from events.job import JobState, fold
from events.job_events import JobEvent
from events.policy import RetryPolicy
from events.spec import JobSpec
from ffrtmp.client.conn import Address, Conn
from ffrtmp.scheduler.core import SchedulerSettings
from ffrtmp.scheduler.service import Scheduler, ServiceSettings
from ffrtmp.scheduler.timers import TimerSettings
from tests import waiting
from tests.simagent import Behaviour, Plan, SimAgent

DEADLINE_S = 20.0
STOP_DEADLINE_S = 30.0  # a scheduler's shutdown: lease release, a snapshot being saved
GIB = 1024**3
CPU = Capabilities(hostname="cpu", encoders=("libx264", "libx265", "libsvtav1"))
GPU = Capabilities(
    hostname="gpu",
    encoders=("libx264", "h264_nvenc", "hevc_nvenc"),
    gpus=(
        GpuInfo(
            index=0,
            name="RTX A2000",
            memory_bytes=6 * GIB,
            nvenc_sessions=2,
            encoders=("h264_nvenc", "hevc_nvenc"),
        ),
    ),
)
FAST = ServiceSettings(
    core=SchedulerSettings(
        timers=TimerSettings(heartbeat_s=0.2, agent_lost_after_s=1.5, stalled_after_s=30.0),
        retry=RetryPolicy(base_s=0.1, cap_s=0.2),
    ),
    tick_s=0.05,
    lease_ttl_s=1.5,
)


def liveness(window_s: float, heartbeat_s: float) -> ServiceSettings:
    """The production scheduler with only its stall window and heartbeat interval scaled."""
    timers = TimerSettings(
        heartbeat_s=heartbeat_s, agent_lost_after_s=10 * heartbeat_s, stalled_after_s=window_s
    )
    return ServiceSettings(core=SchedulerSettings(timers=timers))


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, deadline_s: float = DEADLINE_S
) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` when the deadline passes."""
    await waiting.wait_until(check, what, deadline_s)


class Farm:
    """One test's farm on one prefix: send commands, read job histories, run agents."""

    def __init__(self, store: JetStreamEventStore) -> None:
        self.store = store
        self.subjects = store.subjects
        self.js = store.nc.jetstream()
        url = store.nc.connected_url.geturl() if store.nc.connected_url else ""
        self.client = Conn(store, Address(url=url, subjects=store.subjects))
        self.agents: list[SimAgent] = []
        self._serial = 0

    async def send(self, command: OperatorCommand) -> None:
        """Send an operator command through the client, as the CLI and the API do.

        A submit is asked of the leading scheduler first (``client.submit``); with none leading
        it is stored on the commands stream.
        """
        await self.client.send(command)

    async def store_command(self, command: OperatorCommand) -> None:
        """Store a command on the commands stream, as a client does when no scheduler answers."""
        message = command_message(self.subjects, command)
        await self.js.publish(message.subject, message.payload, headers=message.headers)

    def command_id(self) -> str:
        self._serial += 1
        return f"cmd-{self._serial}"

    async def submit(self, job: str, **spec: Any) -> None:
        spec.setdefault("scenario", "720p-h264")
        command = SubmitJob(id=self.command_id(), job=job, at=time.time(), spec=JobSpec(**spec))
        await self.send(command)

    async def history(self, job: str) -> list[JobEvent]:
        loaded = await self.store.load(job)
        return [e for _, e in loaded.events if isinstance(e, JobEventBase)]

    async def kinds(self, job: str) -> list[str]:
        return [type(event).__name__ for event in await self.history(job)]

    async def state(self, job: str) -> JobState:
        return fold(job, await self.history(job))

    async def wait_status(self, job: str, *statuses: str) -> JobState:
        state: JobState | None = None

        async def reached() -> bool:
            nonlocal state
            state = await self.state(job)
            return state.status in statuses

        await wait_until(reached, f"job {job} to be {'/'.join(statuses)}")
        assert state is not None
        return state

    async def agent(
        self,
        name: str,
        caps: Capabilities = CPU,
        slots: int = 1,
        behaviour: Behaviour | Plan | None = None,
    ) -> SimAgent:
        agent = SimAgent(
            self.store.nc,
            self.store,
            self.subjects,
            name,
            caps,
            slots,
            heartbeat_s=0.2,
            behaviour=behaviour or Behaviour(run_s=0.05),
        )
        await agent.start()
        self.agents.append(agent)
        return agent

    async def close(self) -> None:
        for agent in self.agents:
            with contextlib.suppress(Exception):
                await agent.stop()


@contextlib.asynccontextmanager
async def scheduler(
    store: JetStreamEventStore, settings: ServiceSettings = FAST, name: str = ""
) -> AsyncIterator[Scheduler]:
    """A scheduler running in this process until the block ends; yields once it leads."""
    sched = Scheduler(store, settings, name=name)
    task = asyncio.create_task(sched.run())

    async def leading() -> bool:
        if task.done():
            task.result()  # surface a crash
        return sched.leading.is_set()

    try:
        if settings.lead:
            await wait_until(leading, "the scheduler to lead")
        yield sched
    finally:
        # One cancel ends it (``events.aio``); the deadline turns a lost one into a failure
        # naming it instead of a test run that never ends.
        task.cancel()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                async with asyncio.timeout(STOP_DEADLINE_S):
                    await task
        except TimeoutError:
            raise AssertionError(
                f"the scheduler ran on {STOP_DEADLINE_S} s after its cancel"
            ) from None
