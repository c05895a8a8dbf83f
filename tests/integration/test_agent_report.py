"""JobWriter against both stores: reports land in order, a moved job fences the agent, dedup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import msgspec
import pytest

from agent.report import JobWriter, msg_id
from events.base import JobEventBase
from events.commands import (
    AgentGone,
    Assign,
    CancelJob,
    Complete,
    ControlDone,
    Fail,
    JobCommand,
    PauseJob,
    Progress,
    RequeueDue,
    ResumeJob,
    Start,
    SubmitJob,
)
from events.enums import ControlAction, FailureReason, JobStatus
from events.errors import ConcurrencyConflict
from events.jetstream import JetStreamEventStore
from events.job import decide, fold
from events.job_events import (
    JobCanceled,
    JobCompleted,
    JobEvent,
    JobPaused,
    JobProgressed,
    JobResults,
    JobResumed,
    JobRetrying,
    JobStarted,
)
from events.spec import JobSpec
from events.store import Append, EventStore, Loaded, MemoryEventStore
from events.subjects import SCHEDULER_WRITER, Subjects
from events.work import Dispatch
from ffrtmp.natsd import NatsServer

pytestmark = pytest.mark.anyio

JOB = "j1"
AGENT = "a1"
RESULTS = JobResults(wall_s=1.5, frames=30)


@dataclass
class Scheduler:
    """Plays the scheduler by hand: decides against the log and appends under the check."""

    store: EventStore
    subjects: Subjects
    now: float = 100.0

    async def job(self) -> tuple[list[JobEvent], int]:
        """The job's events and the last sequence on its subjects."""
        loaded = await self.store.load(JOB)
        return [e for _, e in loaded.events if isinstance(e, JobEventBase)], loaded.last_seq

    async def do(self, command: JobCommand, cause: str = "sched") -> int:
        """Decide ``command`` against the log and append its one event; return its sequence."""
        events, last = await self.job()
        self.now += 1
        (event,) = decide(fold(JOB, events), command, self.now, cause)
        return await self.store.append(
            Append(
                subject=self.subjects.job_event(JOB, SCHEDULER_WRITER),
                event=event,
                msg_id=f"sched:{last}",
                expected=last,
                expected_subject=self.subjects.job_events(JOB),
            )
        )

    async def assign(self, agent: str = AGENT) -> Dispatch:
        """Assign the queued job to ``agent``; the dispatch the agent would receive."""
        seq = await self.do(Assign(agent=agent, budget_s=60.0))
        state = fold(JOB, (await self.job())[0])
        assert state.spec is not None
        return Dispatch(
            job=JOB,
            attempt=state.attempt,
            spec=state.spec,
            budget_s=state.budget_s,
            retries=state.retries,
            after_seq=seq,
            at=self.now,
            agent=agent,
        )


@pytest.fixture(params=["memory", "jetstream"])
def server_url(request: pytest.FixtureRequest) -> str | None:
    """None for the memory store; the session server's URL for JetStream."""
    if request.param == "memory":
        return None
    server: NatsServer = request.getfixturevalue("nats_server")
    return server.url


@pytest.fixture
async def store(server_url: str | None, prefix: str) -> AsyncIterator[EventStore]:
    """An empty store of each kind under this test's prefix."""
    if server_url is None:
        yield MemoryEventStore()
        return
    async with await JetStreamEventStore.connect(server_url, Subjects(prefix), ensure=True) as js:
        yield js


@pytest.fixture
async def sched(store: EventStore, prefix: str) -> Scheduler:
    """A scheduler with the job submitted (max 3 retries), queued."""
    scheduler = Scheduler(store, Subjects(prefix))
    spec = JobSpec(scenario="1080p-h264", max_retries=3)
    await scheduler.do(SubmitJob(id="submit-1", job=JOB, at=1.0, spec=spec), cause="submit-1")
    return scheduler


def writer(sched: Scheduler, dispatch: Dispatch, agent: str = AGENT) -> JobWriter:
    """A writer for ``agent`` on the dispatch."""
    return JobWriter(sched.store, sched.subjects, agent, dispatch)


async def types(sched: Scheduler) -> list[str]:
    """The job's event types, in order."""
    return [type(e).__name__ for e in (await sched.job())[0]]


def start(attempt: int = 1, agent: str = AGENT) -> Start:
    """A start report."""
    return Start(agent=agent, attempt=attempt)


def complete(attempt: int = 1, agent: str = AGENT) -> Complete:
    """A complete report."""
    return Complete(agent=agent, attempt=attempt, results=RESULTS)


async def test_happy_path_lands_the_reports_in_order(sched: Scheduler) -> None:
    """Start, progress and complete land after the assignment, caused by job:attempt."""
    w = writer(sched, await sched.assign())
    assert w.holds  # the dispatch's view, until the first report reads the log
    started = await w.report(start(), 200.0)
    assert [type(e) for e in started] == [JobStarted]
    assert await w.report(Progress(agent=AGENT, attempt=1, percent=50.0), 201.0)
    done = await w.report(complete(), 202.0)
    assert done == [
        JobCompleted(job=JOB, at=202.0, cause="j1:1", agent=AGENT, attempt=1, results=RESULTS)
    ]
    assert await types(sched) == [
        "JobSubmitted",
        "JobAssigned",
        "JobStarted",
        "JobProgressed",
        "JobCompleted",
    ]
    events, last = await sched.job()
    assert {e.cause for e in events[2:]} == {"j1:1"}
    assert w.state.status is JobStatus.COMPLETED
    assert w.last_seq == last
    assert not w.holds


async def test_a_control_request_between_reports_is_read_and_progress_goes_on(
    sched: Scheduler,
) -> None:
    """After the scheduler writes a control request the writer re-reads and still reports."""
    w = writer(sched, await sched.assign())
    await w.report(start(), 200.0)
    await sched.do(PauseJob(id="pause-1", job=JOB, at=5.0), cause="pause-1")
    assert [
        type(e) for e in await w.report(Progress(agent=AGENT, attempt=1, percent=25), 201.0)
    ] == [JobProgressed]
    assert w.state.requested is ControlAction.PAUSE
    paused = await w.report(ControlDone(agent=AGENT, action=ControlAction.PAUSE), 202.0, "pause-1")
    assert [(type(e), e.cause) for e in paused] == [(JobPaused, "pause-1")]
    await sched.do(ResumeJob(id="resume-1", job=JOB, at=6.0), cause="resume-1")
    resumed = await w.report(
        ControlDone(agent=AGENT, action=ControlAction.RESUME), 203.0, "resume-1"
    )
    assert [type(e) for e in resumed] == [JobResumed]
    assert await w.report(complete(), 204.0)
    assert (await types(sched))[-4:] == [
        "JobPaused",
        "JobControlRequested",
        "JobResumed",
        "JobCompleted",
    ]


async def test_a_second_pause_of_one_attempt_is_not_deduped(sched: Scheduler) -> None:
    """Two pauses of one attempt answering controls without a cause are two events."""
    w = writer(sched, await sched.assign())
    await w.report(start(), 200.0)
    for n in range(2):
        await sched.do(PauseJob(id=f"p{n}", job=JOB, at=5.0))
        assert await w.report(ControlDone(agent=AGENT, action=ControlAction.PAUSE), 201.0 + n)
        await sched.do(ResumeJob(id=f"r{n}", job=JOB, at=6.0))
        assert await w.report(ControlDone(agent=AGENT, action=ControlAction.RESUME), 202.0 + n)
    assert (await types(sched)).count("JobPaused") == 2
    assert w.state.status is JobStatus.RUNNING


async def test_cancel_before_start_refuses_the_start(sched: Scheduler) -> None:
    """A job canceled while assigned cannot be started: nothing is appended."""
    w = writer(sched, await sched.assign())
    await sched.do(CancelJob(id="cancel-1", job=JOB, at=5.0))
    _, last = await sched.job()
    assert await w.report(start(), 200.0) == []
    assert (await sched.job())[1] == last
    assert w.state.status is JobStatus.CANCELED
    assert not w.holds


async def test_an_operator_cancel_is_answered_by_the_agent(sched: Scheduler) -> None:
    """A running job's cancel request ends with the agent's JobCanceled, caused by the command."""
    w = writer(sched, await sched.assign())
    await w.report(start(), 200.0)
    await sched.do(CancelJob(id="cancel-1", job=JOB, at=5.0), cause="cancel-1")
    done = await w.report(ControlDone(agent=AGENT, action=ControlAction.CANCEL), 201.0, "cancel-1")
    assert [(type(e), e.cause) for e in done] == [(JobCanceled, "cancel-1")]
    assert fold(JOB, (await sched.job())[0]).status is JobStatus.CANCELED


async def test_an_agent_declared_lost_cannot_complete(sched: Scheduler) -> None:
    """Once the job retries elsewhere, the old holder's complete is refused and stores nothing."""
    w = writer(sched, await sched.assign())
    await w.report(start(), 200.0)
    await sched.do(AgentGone(agent=AGENT))
    _, last = await sched.job()
    assert await w.report(complete(), 201.0) == []
    assert (await sched.job())[1] == last
    assert w.state.status is JobStatus.RETRYING


def count_loads(sched: Scheduler, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, each job the store loads is noted in the list returned (still loaded)."""
    loads: list[str] = []
    real_load = sched.store.load

    async def counted(job: str) -> Loaded:
        loads.append(job)
        return await real_load(job)

    monkeypatch.setattr(sched.store, "load", counted)
    return loads


async def test_another_agent_cannot_use_a_dispatch(sched: Scheduler) -> None:
    """A writer for an agent the job was not assigned to cannot start or complete it."""
    dispatch = await sched.assign()
    zombie = writer(sched, dispatch, agent="a2")
    assert await zombie.report(start(agent="a2"), 200.0) == []
    assert await writer(sched, dispatch).report(start(), 201.0)
    assert await zombie.report(complete(agent="a2"), 202.0) == []
    assert (await types(sched))[-1] == "JobStarted"


async def test_a_dispatch_naming_its_agent_starts_without_reading_the_log(
    sched: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first report trusts a dispatch naming this agent: no read of the job at all."""
    dispatch = await sched.assign()
    loads = count_loads(sched, monkeypatch)
    w = writer(sched, dispatch)
    assert [type(e) for e in await w.report(start(), 200.0)] == [JobStarted]
    assert await w.report(complete(), 201.0)
    assert loads == []


async def test_a_second_delivery_of_a_dispatch_never_starts_it_again(sched: Scheduler) -> None:
    """A redelivered assignment's start meets the first delivery's as a conflict: no second run."""
    dispatch = await sched.assign()
    assert [type(e) for e in await writer(sched, dispatch).report(start(), 200.0)] == [JobStarted]
    assert await writer(sched, dispatch).report(start(), 201.0) == []
    assert await types(sched) == ["JobSubmitted", "JobAssigned", "JobStarted"]


async def test_a_trusted_dispatch_still_meets_what_happened_after_it(sched: Scheduler) -> None:
    """A cancel after the assignment makes the trusted start conflict, read, and stand down."""
    dispatch = await sched.assign()
    await sched.do(CancelJob(id="cancel-1", job=JOB, at=150.0), cause="cancel-1")
    w = writer(sched, dispatch)
    assert await w.report(start(), 200.0) == []
    assert (await types(sched))[-1] == "JobCanceled"


async def test_a_dispatch_from_an_older_scheduler_is_read_first(
    sched: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dispatch that names no agent is not trusted: the first report reads the job."""
    dispatch = msgspec.structs.replace(await sched.assign(), agent="")
    loads = count_loads(sched, monkeypatch)
    assert await writer(sched, dispatch).report(start(), 200.0)
    assert loads == [JOB]


async def test_a_dispatch_naming_another_agent_is_not_trusted(sched: Scheduler) -> None:
    """A dispatch for a1 in a2's hands is read against the log, which fences a2 out."""
    dispatch = await sched.assign()
    assert dispatch.agent == AGENT
    zombie = writer(sched, dispatch, agent="a2")
    assert await zombie.report(start(agent="a2"), 200.0) == []
    assert (await types(sched))[-1] == "JobAssigned"


async def test_an_older_attempt_of_the_same_agent_is_fenced(sched: Scheduler) -> None:
    """Attempt 1's writer can neither complete nor cancel attempt 2 on the same agent."""
    old = writer(sched, await sched.assign())
    await old.report(start(), 200.0)
    await sched.do(AgentGone(agent=AGENT))
    sched.now += 1000  # past the retry backoff
    await sched.do(RequeueDue())
    new = writer(sched, await sched.assign())
    assert await new.report(start(attempt=2), 300.0)
    await sched.do(CancelJob(id="cancel-2", job=JOB, at=5.0), cause="cancel-2")
    cancel = ControlDone(agent=AGENT, action=ControlAction.CANCEL)
    assert await old.report(cancel, 301.0, "cancel-2") == []
    assert await old.report(complete(), 302.0) == []
    assert (await types(sched))[-1] == "JobControlRequested"
    assert await new.report(complete(attempt=2), 303.0)


async def test_a_failure_retries_per_the_decider(sched: Scheduler) -> None:
    """A runtime error with retries left lands JobRetrying, caused by job:attempt."""
    w = writer(sched, await sched.assign())
    await w.report(start(), 200.0)
    fail = Fail(agent=AGENT, attempt=1, reason=FailureReason.RUNTIME_ERROR, message="boom")
    (event,) = await w.report(fail, 201.0)
    assert isinstance(event, JobRetrying)
    assert (event.cause, event.message, event.retry_at) == ("j1:1", "boom", 206.0)


async def test_resending_a_report_stores_it_once(sched: Scheduler) -> None:
    """The same milestone sent twice, or a report whose ack was lost, is stored once."""
    w = writer(sched, await sched.assign())
    await w.report(start(), 200.0)
    milestone = Progress(agent=AGENT, attempt=1, percent=50.0)
    first = await w.report(milestone, 201.0)
    assert await w.report(milestone, 202.0) == [
        JobProgressed(job=JOB, at=202.0, cause="j1:1", agent=AGENT, attempt=1, percent=50.0)
    ]
    assert first[0].at == 201.0
    _, last = await sched.job()
    lost = JobCompleted(job=JOB, at=203.0, cause="j1:1", agent=AGENT, attempt=1, results=RESULTS)
    stored = await sched.store.append(
        Append(
            subject=sched.subjects.job_event(JOB, AGENT),
            event=lost,
            msg_id=msg_id(lost, 1),
            expected=last,
            expected_subject=sched.subjects.job_events(JOB),
        )
    )
    assert await w.report(complete(), 204.0)
    assert (await types(sched)).count("JobProgressed") == 1
    assert (await types(sched)).count("JobCompleted") == 1
    assert w.last_seq == stored


async def test_a_report_for_another_attempt_is_a_bug(sched: Scheduler) -> None:
    """A report naming another agent or attempt than the writer's is refused loudly."""
    w = writer(sched, await sched.assign())
    with pytest.raises(ValueError, match="attempt 1"):
        await w.report(start(attempt=2), 200.0)
    with pytest.raises(ValueError, match="a2"):
        await w.report(ControlDone(agent="a2", action=ControlAction.PAUSE), 200.0)


def test_msg_ids_name_job_attempt_type_and_detail() -> None:
    """Msg ids are job:attempt:type, plus the percent of a milestone or a control's cause."""
    progressed = JobProgressed(job=JOB, at=1.0, agent=AGENT, attempt=2, percent=25.0)
    started = JobStarted(job=JOB, at=1.0, agent=AGENT, attempt=2)
    paused = JobPaused(job=JOB, at=1.0, resume_to=JobStatus.RUNNING, agent=AGENT)
    assert msg_id(progressed, 2) == "j1:2:JobProgressed:25"
    assert msg_id(started, 2) == "j1:2:JobStarted"
    assert msg_id(paused, 2, "pause-1") == "j1:2:JobPaused:pause-1"


async def test_a_job_that_keeps_moving_is_a_conflict(sched: Scheduler) -> None:
    """With its tries spent on a job that moved under each, a report raises the conflict."""
    dispatch = await sched.assign()
    w = JobWriter(sched.store, sched.subjects, AGENT, dispatch, tries=1)
    await w.report(start(), 200.0)
    await sched.do(PauseJob(id="pause-1", job=JOB, at=5.0))
    with pytest.raises(ConcurrencyConflict):
        await w.report(Progress(agent=AGENT, attempt=1, percent=50.0), 201.0)
    assert (await types(sched))[-1] == "JobControlRequested"
    assert await w.report(Progress(agent=AGENT, attempt=1, percent=50.0), 202.0)
