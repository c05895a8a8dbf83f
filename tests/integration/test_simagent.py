"""The simulated agent on a real server, with the test playing the scheduler by hand."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

from events.agent_events import AgentDeregistered, AgentRegistered, Capabilities
from events.base import AgentEventBase, JobEventBase
from events.codec import decode_heartbeat, encode
from events.commands import Assign, CancelJob, JobCommand, PauseJob, ResumeJob, SubmitJob
from events.enums import ControlAction, FailureReason, JobStatus
from events.jetstream import JetStreamEventStore
from events.job import JobState, decide, fold
from events.job_events import JobCanceled, JobCompleted, JobEvent, JobProgressed, JobRetrying
from events.spec import JobSpec
from events.store import Append
from events.subjects import MSG_ID, SCHEDULER_WRITER, Subjects
from events.work import Control, Dispatch, Heartbeat
from ffrtmp.natsd import NatsServer
from tests.simagent import Behaviour, Outcome, Plan, SimAgent
from tests.waiting import wait_until

pytestmark = pytest.mark.anyio

CAPS = Capabilities(hostname="sim", encoders=("libx264",), cpu_cores=4)
QUICK = Behaviour(run_s=0.05, milestones=(50.0,))
HANG = Behaviour(outcome=Outcome.HANG)
DEADLINE_S = 5.0
_ids = itertools.count()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` (often: the log and the HB stream signal nothing here) to the deadline."""
    await wait_until(check, what, DEADLINE_S, poll_s=0.005)


@dataclass
class Scheduler:
    """Plays the scheduler: decides against the log, appends under the check, publishes work."""

    store: JetStreamEventStore
    js: JetStreamContext
    subjects: Subjects

    async def history(self, job: str) -> tuple[list[JobEvent], int]:
        """The job's events and the last sequence on its subjects."""
        loaded = await self.store.load(job)
        return [e for _, e in loaded.events if isinstance(e, JobEventBase)], loaded.last_seq

    async def state(self, job: str) -> JobState:
        """The job as the log has it."""
        return fold(job, (await self.history(job))[0])

    async def do(self, job: str, command: JobCommand, cause: str = "sched") -> int:
        """Decide ``command`` and append its one event under the check; its sequence."""
        events, last = await self.history(job)
        (event,) = decide(fold(job, events), command, float(next(_ids)), cause)
        return await self.store.append(
            Append(
                subject=self.subjects.job_event(job, SCHEDULER_WRITER),
                event=event,
                msg_id=f"sched:{job}:{last}",
                expected=last,
                expected_subject=self.subjects.job_events(job),
            )
        )

    async def dispatch(self, job: str, agent: str, max_retries: int = 3) -> Dispatch:
        """Submit the job, assign it to ``agent`` and publish the dispatch."""
        spec = JobSpec(scenario="1080p-h264", max_retries=max_retries)
        submit = SubmitJob(id=f"submit-{job}", job=job, at=1.0, spec=spec)
        await self.do(job, submit, cause=submit.id)
        seq = await self.do(job, Assign(agent=agent, budget_s=60.0))
        state = await self.state(job)
        assert state.spec is not None
        dispatch = Dispatch(
            job=job,
            attempt=state.attempt,
            spec=state.spec,
            budget_s=state.budget_s,
            retries=state.retries,
            after_seq=seq,
            at=state.assigned_at,
        )
        await self.publish(agent, dispatch, f"{job}:{dispatch.attempt}")
        return dispatch

    async def publish(self, agent: str, message: Dispatch | Control, msg_id: str) -> bool:
        """Publish on the agent's work subject; whether the stream took it as new."""
        data = encode(message)
        ack = await self.js.publish(self.subjects.work(agent), data, headers={MSG_ID: msg_id})
        return not ack.duplicate

    async def control(
        self, job: str, agent: str, command: CancelJob | PauseJob | ResumeJob
    ) -> None:
        """Record the operator's request and send the agent its control message."""
        await self.do(job, command, cause=command.id)
        state = await self.state(job)
        assert state.requested is not None
        control = Control(
            job=job, attempt=state.attempt, action=state.requested, at=2.0, cause=command.id
        )
        await self.publish(agent, control, command.id)

    async def wait(self, job: str, status: JobStatus) -> JobState:
        """Wait until the job reaches ``status``."""

        async def reached() -> bool:
            return (await self.state(job)).status is status

        await until(reached, f"job {job} to be {status}")
        return await self.state(job)


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[NatsClient]:
    """One connection for the scheduler and the agents."""
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest.fixture
async def sched(nc: NatsClient, prefix: str) -> Scheduler:
    """The hand-played scheduler, over a store whose streams exist."""
    subjects = Subjects(prefix)
    store = JetStreamEventStore(nc, subjects)
    await store.start(ensure=True)
    return Scheduler(store, nc.jetstream(), subjects)


SimFactory = Callable[..., Awaitable[SimAgent]]
"""``sim(agent="a1", slots=1, behaviour=QUICK)``: a started agent beating every 20 ms."""


@pytest.fixture
async def sim(nc: NatsClient, sched: Scheduler) -> AsyncIterator[SimFactory]:
    """Start sim agents; whatever a test leaves running is stopped (as a crash) at the end."""
    started: list[SimAgent] = []

    async def make(
        agent: str = "a1", slots: int = 1, behaviour: Behaviour | Plan = QUICK
    ) -> SimAgent:
        new = SimAgent(
            nc,
            sched.store,
            sched.subjects,
            agent,
            CAPS,
            slots,
            heartbeat_s=0.02,
            behaviour=behaviour,
        )
        await new.start()
        started.append(new)
        return new

    yield make
    for agent in started:
        await agent.stop(deregister=False)


async def agent_events(sched: Scheduler, agent: str) -> list[AgentEventBase]:
    """The agent's lifecycle events in the log."""
    return [
        e
        async for _, e in sched.store.replay()
        if isinstance(e, AgentEventBase) and e.agent == agent
    ]


async def last_beat(sched: Scheduler, agent: str) -> tuple[int, Heartbeat] | None:
    """The heartbeat stream's last message for ``agent``: its sequence and content."""
    try:
        msg = await sched.js.get_last_msg(
            sched.subjects.heartbeat_stream, sched.subjects.heartbeat(agent)
        )
    except NotFoundError:
        return None
    assert msg.data is not None
    return msg.seq or 0, decode_heartbeat(msg.data)


async def test_registers_runs_a_dispatch_once_and_deregisters(
    sched: Scheduler, sim: SimFactory
) -> None:
    """A dispatch runs once to completion with its milestones; a clean stop deregisters.

    Its progress steps straight to 50 %, passing 25 % on the way: both milestones are written.
    """
    agent = await sim("a1", slots=2, behaviour=QUICK)
    await sched.dispatch("j1", "a1")
    await sched.wait("j1", JobStatus.COMPLETED)
    events, _ = await sched.history("j1")
    progressed = [e for e in events if isinstance(e, JobProgressed)]
    assert [(e.agent, e.percent) for e in progressed] == [("a1", 25.0), ("a1", 50.0)]
    assert isinstance(events[-1], JobCompleted)
    assert events[-1].agent == "a1"
    assert agent.executions == [("j1", 1)]
    await agent.stop()
    kinds = [type(e) for e in await agent_events(sched, "a1")]
    assert kinds == [AgentRegistered, AgentDeregistered]
    registered = (await agent_events(sched, "a1"))[0]
    assert isinstance(registered, AgentRegistered)
    assert (registered.slots, registered.capabilities) == (2, CAPS)


async def test_a_duplicate_dispatch_never_runs_twice(sched: Scheduler, sim: SimFactory) -> None:
    """A re-published dispatch is deduped; one redelivered after the window is refused."""
    agent = await sim("a1", behaviour=QUICK)
    dispatch = await sched.dispatch("j1", "a1")
    assert not await sched.publish("a1", dispatch, "j1:1")
    await sched.wait("j1", JobStatus.COMPLETED)
    assert await sched.publish("a1", dispatch, "j1:1:again")

    async def refused() -> bool:
        return agent.dropped == [("j1", 1)]

    await until(refused, "the refusal")
    assert agent.executions == [("j1", 1)]
    assert agent.dispatches_seen == [("j1", 1), ("j1", 1)]
    assert isinstance((await sched.history("j1"))[0][-1], JobCompleted)


async def test_failures_land_what_the_decider_says(sched: Scheduler, sim: SimFactory) -> None:
    """A runtime error with retries left retries; a user error fails for good."""

    def plan(dispatch: Dispatch) -> Behaviour:
        reason = FailureReason.USER_ERROR if dispatch.job == "bad" else FailureReason.RUNTIME_ERROR
        return Behaviour(outcome=Outcome.FAIL, run_s=0.01, milestones=(), fail_reason=reason)

    agent = await sim("a1", slots=2, behaviour=plan)
    await sched.dispatch("flaky", "a1", max_retries=2)
    await sched.dispatch("bad", "a1")
    retrying = await sched.wait("flaky", JobStatus.RETRYING)
    failed = await sched.wait("bad", JobStatus.FAILED)
    assert (retrying.reason, retrying.retries) == (FailureReason.RUNTIME_ERROR, 1)
    assert failed.reason is FailureReason.USER_ERROR
    last = (await sched.history("flaky"))[0][-1]
    assert isinstance(last, JobRetrying)
    assert (last.agent, last.cause) == ("a1", "flaky:1")
    assert sorted(agent.executions) == [("bad", 1), ("flaky", 1)]


async def test_pause_resume_and_cancel_of_a_hanging_job(sched: Scheduler, sim: SimFactory) -> None:
    """The agent answers pause, resume and cancel; its cancel ends the job and frees the slot."""
    agent = await sim("a1", behaviour=HANG)
    await sched.dispatch("j1", "a1")
    await sched.wait("j1", JobStatus.RUNNING)
    await sched.control("j1", "a1", PauseJob(id="pause-1", job="j1", at=3.0))
    await sched.wait("j1", JobStatus.PAUSED)
    await sched.control("j1", "a1", ResumeJob(id="resume-1", job="j1", at=4.0))
    await sched.wait("j1", JobStatus.RUNNING)
    await sched.control("j1", "a1", CancelJob(id="cancel-1", job="j1", at=5.0))
    await sched.wait("j1", JobStatus.CANCELED)
    canceled = (await sched.history("j1"))[0][-1]
    assert isinstance(canceled, JobCanceled)
    assert (canceled.agent, canceled.cause) == ("a1", "cancel-1")

    async def freed() -> bool:
        return agent.free_slots == 1

    await until(freed, "the slot to be freed")
    assert agent.controls_seen == [
        ("j1", 1, ControlAction.PAUSE),
        ("j1", 1, ControlAction.RESUME),
        ("j1", 1, ControlAction.CANCEL),
    ]
    assert agent.dropped == []


async def test_heartbeats_show_the_slots_a_job_holds(sched: Scheduler, sim: SimFactory) -> None:
    """While a job hangs the heartbeat shows one slot fewer and the job; then the slot returns."""
    await sim("a1", slots=2, behaviour=HANG)

    async def beat_shows(free: int, jobs: list[str]) -> bool:
        last = await last_beat(sched, "a1")
        return last is not None and (last[1].free_slots, [r.job for r in last[1].running]) == (
            free,
            jobs,
        )

    await until(lambda: beat_shows(2, []), "a heartbeat with 2 free, no jobs")
    await sched.dispatch("j1", "a1")
    await until(lambda: beat_shows(1, ["j1"]), "a heartbeat with 1 free, j1")
    await sched.wait("j1", JobStatus.RUNNING)
    await sched.control("j1", "a1", CancelJob(id="cancel-1", job="j1", at=5.0))
    await until(lambda: beat_shows(2, []), "a heartbeat with 2 free, no jobs")


async def beat_seq(sched: Scheduler, agent: str) -> int:
    """The sequence of ``agent``'s last heartbeat on the stream, 0 if none."""
    last = await last_beat(sched, agent)
    return 0 if last is None else last[0]


async def more_beats(sched: Scheduler, agent: str, count: int) -> None:
    """Wait until ``agent`` has published ``count`` more heartbeats."""
    for _ in range(count):
        before = await beat_seq(sched, agent)

        async def newer(before: int = before) -> bool:
            return await beat_seq(sched, agent) > before

        await until(newer, "a newer heartbeat")


async def test_a_crash_stops_heartbeats_and_does_not_deregister(
    sched: Scheduler, sim: SimFactory
) -> None:
    """After stop(deregister=False) the agent's last heartbeat stays put and no event says so."""
    crashed = await sim("a1")
    await sim("a2")
    await more_beats(sched, "a1", 1)
    await crashed.stop(deregister=False)
    await more_beats(sched, "a2", 2)  # what a1 sent before it stopped is stored by now
    frozen = await last_beat(sched, "a1")
    await more_beats(sched, "a2", 3)
    assert await last_beat(sched, "a1") == frozen
    assert [type(e) for e in await agent_events(sched, "a1")] == [AgentRegistered]


async def test_a_dispatch_beyond_the_slots_is_refused_on_the_log(
    sched: Scheduler, sim: SimFactory
) -> None:
    """With its one slot held, the agent fails the next dispatch as a resource error."""
    agent = await sim("a1", behaviour=HANG)
    await sched.dispatch("j1", "a1")
    await sched.wait("j1", JobStatus.RUNNING)
    await sched.dispatch("j2", "a1")
    refused = await sched.wait("j2", JobStatus.RETRYING)
    assert refused.reason is FailureReason.RESOURCE_ERROR
    assert agent.refused == [("j2", 1)]
    assert agent.executions == [("j1", 1)]


async def test_malformed_work_is_set_aside_and_the_next_runs(
    sched: Scheduler, sim: SimFactory, nc: NatsClient
) -> None:
    """Junk on the work subject goes to the dead-letter subject; the next dispatch still runs."""
    agent = await sim("a1", behaviour=QUICK)
    dead: list[Msg] = []

    async def keep(msg: Msg) -> None:
        dead.append(msg)

    await nc.subscribe(sched.subjects.dead_letter(agent.durable), cb=keep)
    await nc.flush()
    assert await sched.publish(
        "a1", Control(job="x", attempt=1, action=ControlAction.PAUSE, at=1.0), "c"
    )
    await sched.js.publish(sched.subjects.work("a1"), b"{not json", headers={MSG_ID: "junk"})
    await sched.dispatch("j1", "a1")
    await sched.wait("j1", JobStatus.COMPLETED)

    async def set_aside() -> bool:
        return len(dead) == 1

    await until(set_aside, "the message to be set aside")
    assert dead[0].data == b"{not json"
    assert agent.malformed == 1
    assert agent.controls_seen == [("x", 1, ControlAction.PAUSE)]
