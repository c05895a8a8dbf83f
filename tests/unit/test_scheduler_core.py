"""The scheduler core, pure: order, placement, rejection, timers, loss, quarantine, retention.

``Farm`` plays the log: it appends a decision only when its expected sequence matches (the
optimistic concurrency check the store makes), numbers events like a stream, and feeds them
back to the core the way the service does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events.agent_events import (
    AgentCleared,
    AgentDeregistered,
    AgentQuarantined,
    AgentRegistered,
    Capabilities,
)
from events.base import AgentEventBase, Event
from events.commands import (
    CancelJob,
    ClearAgent,
    Complete,
    Fail,
    PauseJob,
    Progress,
    QuarantineAgent,
    RemoveAgent,
    RespondToJob,
    ResumeJob,
    RetryJob,
    Start,
    SubmitJob,
)
from events.enums import AgentStatus, FailureReason, JobStatus, Priority, Queue
from events.job import decide
from events.job_events import (
    JobAssigned,
    JobFailed,
    JobRejected,
    JobResults,
    JobRetrying,
    JobTimedOut,
)
from events.spec import JobSpec
from events.work import Heartbeat
from ffrtmp.scheduler.core import Decision, JobDecision, SchedulerCore, SchedulerSettings
from ffrtmp.scheduler.timers import TimerSettings
from tests.farm import CPU, GPU

S = JobStatus


class Farm:
    """A log in a list, with the store's concurrency check, feeding one core."""

    def __init__(self, core: SchedulerCore | None = None) -> None:
        self.core = core or SchedulerCore()
        self.log: list[Event] = []
        self.last: dict[str, int] = {}  # entity → last seq, as the stream knows it
        self.now = 1000.0
        self.conflicts = 0

    def _key(self, event: Event) -> str:
        if isinstance(event, AgentEventBase):
            return f"agent:{event.agent}"
        return f"job:{event.job}"  # type: ignore[attr-defined]

    def append(self, event: Event) -> int:
        """An append with no concurrency check (agents registering)."""
        self.log.append(event)
        seq = len(self.log)
        self.last[self._key(event)] = seq
        self.core.apply(seq, event, self.now)
        self.core.advance(seq)
        return seq

    def commit(self, decisions: Sequence[Decision]) -> list[Event]:
        """Append each decision whose expected sequence still holds, as the store would."""
        landed = []
        for decision in decisions:
            if not decision.events:
                continue
            if isinstance(decision, JobDecision):
                key = f"job:{decision.job}"
            else:
                key = f"agent:{decision.agent}"
            if self.last.get(key, 0) != decision.expected:
                self.conflicts += 1
                continue
            for event in decision.events:
                self.append(event)
                landed.append(event)
        return landed

    def register(self, agent: str, caps: Capabilities = CPU, slots: int = 1) -> None:
        self.append(
            AgentRegistered(agent=agent, at=self.now, cause="boot", capabilities=caps, slots=slots)
        )

    def submit(self, job: str, **spec: Any) -> list[Event]:
        spec.setdefault("scenario", "720p-h264")
        command = SubmitJob(id=f"c-{job}", job=job, at=self.now, spec=JobSpec(**spec))
        return self.commit([self.core.on_command(command, self.now)])

    def operator(self, command: Any) -> list[Event]:
        return self.commit([self.core.on_command(command, self.now)])

    def plan(self) -> list[Event]:
        """One planning pass, recorded as the service records it, and its decisions committed."""
        plan = self.core.plan(self.now)
        landed = self.commit(plan.decisions)
        self.core.planned(plan)
        return landed

    def tick(self) -> list[Event]:
        """One tick, committed, then recorded as the service records it."""
        tick = self.core.tick(self.now)
        landed = self.commit(tick.decisions)
        self.core.ticked(tick)
        return landed

    def report(self, job: str, command: Any) -> list[Event]:
        """An agent's report, decided and appended under the check like the agent does."""
        state = self.core.jobs[job]
        events = decide(state, command, self.now, f"{job}:{state.attempt}")
        decision = JobDecision(
            job=job,
            events=tuple(events),
            expected=self.core.seqs[job],
            msg_ids=("x",) * len(events),
        )
        return self.commit([decision])

    def beat(self, agent: str) -> None:
        self.core.heard_from(Heartbeat(agent=agent, at=self.now, slots=1, free_slots=1), self.now)

    def assigned(self, events: list[Event]) -> list[tuple[str, str]]:
        return [(e.job, e.agent) for e in events if isinstance(e, JobAssigned)]


def test_order_is_queue_then_priority_then_fifo() -> None:
    """With one slot, jobs go live before default before batch, high before low, then FIFO."""
    farm = Farm()
    farm.register("a1")
    submitted = [
        ("b-low", Queue.BATCH, Priority.LOW),
        ("d-med-1", Queue.DEFAULT, Priority.MEDIUM),
        ("l-low", Queue.LIVE, Priority.LOW),
        ("d-high", Queue.DEFAULT, Priority.HIGH),
        ("d-med-2", Queue.DEFAULT, Priority.MEDIUM),
        ("l-high", Queue.LIVE, Priority.HIGH),
    ]
    for job, queue, priority in submitted:
        farm.submit(job, queue=queue, priority=priority)
    order = []
    for _ in submitted:
        (assigned,) = farm.assigned(farm.plan())
        order.append(assigned[0])
        farm.report(assigned[0], Start(agent="a1", attempt=1))
        farm.report(assigned[0], Complete(agent="a1", attempt=1, results=JobResults(wall_s=1)))
    assert order == ["l-high", "l-low", "d-high", "d-med-1", "d-med-2", "b-low"]


def test_a_low_job_waiting_long_enough_overtakes_fresh_high_ones() -> None:
    """Aging: a batch/low job queued over an hour earlier beats a live/high one."""
    farm = Farm()
    farm.register("a1")
    farm.submit("old-low", queue=Queue.BATCH, priority=Priority.LOW)
    farm.now += 3901.0  # batch/low waits 3,900 s longer than live/high before it counts equal
    farm.submit("new-high", queue=Queue.LIVE, priority=Priority.HIGH)
    assert farm.assigned(farm.plan()) == [("old-low", "a1")]


def test_gpu_work_on_a_cpu_only_fleet_is_rejected_at_once_with_a_sentence() -> None:
    """An NVENC job with only CPU agents registered is rejected, saying what is missing."""
    farm = Farm()
    farm.register("c1")
    farm.submit("g", scenario="1080p-h264-nvenc")
    events = farm.plan()
    assert [type(e) for e in events] == [JobRejected]
    rejected = events[0]
    assert isinstance(rejected, JobRejected)
    assert "an NVIDIA GPU with h264_nvenc" in rejected.message
    assert rejected.reason is FailureReason.CAPABILITY_MISMATCH
    assert farm.core.jobs["g"].status is S.REJECTED


def test_no_agent_registered_yet_means_the_job_waits() -> None:
    """With no agents at all a job waits rather than being rejected."""
    farm = Farm()
    farm.submit("j")
    assert farm.plan() == []
    farm.register("c1")
    assert farm.assigned(farm.plan()) == [("j", "c1")]


def test_nvenc_sessions_are_counted_per_gpu_and_cpu_work_avoids_gpu_agents() -> None:
    """A GPU with 2 sessions takes 2 NVENC jobs; CPU work goes to the CPU agent first."""
    farm = Farm()
    farm.register("gpu-1", GPU, slots=4)
    farm.register("cpu-1", CPU, slots=1)
    for job in ("n1", "n2", "n3"):
        farm.submit(job, scenario="1080p-h264-nvenc", queue=Queue.LIVE)
    farm.submit("c1")
    farm.submit("c2")
    placed = dict(farm.assigned(farm.plan()))
    assert placed == {"n1": "gpu-1", "n2": "gpu-1", "c1": "cpu-1", "c2": "gpu-1"}
    assert farm.core.jobs["n3"].status is S.QUEUED  # both sessions taken: it waits
    gpus = {e.job: e.gpu for e in farm.log if isinstance(e, JobAssigned)}
    assert (gpus["n1"], gpus["n2"], gpus["c1"]) == (0, 0, None)


def test_retry_with_backoff_until_retries_run_out() -> None:
    """A runtime error retries after 5 s, then 10 s; with max_retries=2 the third fails."""
    farm = Farm()
    farm.register("a1")
    farm.submit("j", max_retries=2)
    due = []
    for attempt in (1, 2, 3):
        assert farm.assigned(farm.plan()) == [("j", "a1")]
        farm.report("j", Start(agent="a1", attempt=attempt))
        (event,) = farm.report(
            "j", Fail(agent="a1", attempt=attempt, reason=FailureReason.RUNTIME_ERROR)
        )
        if attempt < 3:
            assert isinstance(event, JobRetrying)
            due.append(event.retry_at - farm.now)
            assert farm.tick() == []  # not yet due
            farm.now = event.retry_at
            assert [type(e).__name__ for e in farm.tick()] == ["JobQueued"]
        else:
            assert isinstance(event, JobFailed)
    assert due == [5.0, 10.0]
    assert farm.core.jobs["j"].status is S.FAILED


def test_an_attempt_over_its_budget_or_silent_too_long_times_out() -> None:
    """Stalled (no progress) and over-budget attempts each become a JobTimedOut."""
    farm = Farm(SchedulerCore(SchedulerSettings(timers=TimerSettings(stalled_after_s=30.0))))
    farm.register("a1", slots=2)
    farm.submit("budget", timeout_s=100.0, max_retries=0)
    farm.submit("stall", timeout_s=1000.0)
    farm.plan()
    farm.report("budget", Start(agent="a1", attempt=1))
    farm.report("stall", Start(agent="a1", attempt=1))
    farm.now += 20.0
    farm.report("budget", Progress(agent="a1", attempt=1, percent=25.0))
    farm.now += 11.0
    farm.beat("a1")
    (stalled,) = farm.tick()
    assert isinstance(stalled, JobTimedOut)
    assert (stalled.job, stalled.kind, stalled.retry_at is not None) == ("stall", "stalled", True)
    farm.now += 15.0
    farm.report("budget", Progress(agent="a1", attempt=1, percent=50.0))
    farm.now += 55.0
    farm.beat("a1")
    (over,) = [e for e in farm.tick() if isinstance(e, JobTimedOut)]
    assert isinstance(over, JobTimedOut)
    assert (over.job, over.kind, over.retry_at) == ("budget", "budget", None)
    assert farm.core.jobs["budget"].status is S.FAILED


def test_a_silent_agent_is_lost_its_jobs_retry_elsewhere_and_it_can_return() -> None:
    """Past the heartbeat threshold: AgentLost, its job retries elsewhere, late reports refused."""
    farm = Farm()
    farm.register("a1")
    farm.register("a2")
    farm.submit("j")
    ((job, holder),) = farm.assigned(farm.plan())
    other = "a2" if holder == "a1" else "a1"
    farm.report(job, Start(agent=holder, attempt=1))
    farm.now += 16.0
    farm.beat(other)
    events = farm.tick()
    assert [type(e).__name__ for e in events] == ["AgentLost", "JobRetrying"]
    assert farm.core.agents[holder].status is AgentStatus.LOST
    farm.now = farm.core.jobs[job].retry_at or 0.0
    farm.beat(other)
    farm.tick()
    assert farm.assigned(farm.plan()) == [(job, other)]
    # The lost agent's late report is refused: the job moved on.
    assert farm.report(job, Complete(agent=holder, attempt=1, results=JobResults(wall_s=1))) == []
    farm.core.heard_from(Heartbeat(agent=holder, at=0.0, slots=1, free_slots=1), farm.now)
    assert farm.commit([farm.core.returned(holder, farm.now)])
    assert farm.core.agents[holder].status is AgentStatus.ONLINE


def test_an_agent_failing_while_others_succeed_is_quarantined() -> None:
    """Two runtime failures in a row while another agent completes: no more work for it."""
    farm = Farm(SchedulerCore(SchedulerSettings(quarantine_after=2)))
    farm.register("bad")
    farm.register("good")
    for n in range(6):
        farm.submit(f"j{n}", max_retries=0)
    for _ in range(3):
        for job, agent in farm.assigned(farm.plan()):
            farm.report(job, Start(agent=agent, attempt=1))
            if agent == "bad":
                farm.report(job, Fail(agent=agent, attempt=1, reason=FailureReason.RUNTIME_ERROR))
            else:
                farm.report(job, Complete(agent=agent, attempt=1, results=JobResults(wall_s=1)))
        for agent in ("bad", "good"):
            farm.beat(agent)
        farm.tick()
    assert farm.core.agents["bad"].quarantined
    assert not farm.core.agents["good"].quarantined
    on_bad = [
        job for e in farm.log if isinstance(e, JobAssigned) and e.agent == "bad" for job in [e.job]
    ]
    assert len(on_bad) == 2  # placed before the streak reached 2, none after
    farm.submit("after", max_retries=0)
    assert all(agent == "good" for _, agent in farm.assigned(farm.plan()))


def test_user_errors_do_not_count_towards_quarantine() -> None:
    """A bad input is the job's fault, not the agent's."""
    farm = Farm(SchedulerCore(SchedulerSettings(quarantine_after=1)))
    farm.register("a1")
    farm.register("a2")
    for job in ("x", "y"):
        farm.submit(job, max_retries=0)
    for job, agent in farm.assigned(farm.plan()):
        farm.report(job, Start(agent=agent, attempt=1))
        reason = FailureReason.USER_ERROR if job == "x" else None
        if reason:
            farm.report(job, Fail(agent=agent, attempt=1, reason=reason))
        else:
            farm.report(job, Complete(agent=agent, attempt=1, results=JobResults(wall_s=1)))
    farm.tick()
    assert not any(state.quarantined for state in farm.core.agents.values())


def test_finished_jobs_leave_memory_after_the_retention() -> None:
    """Terminal jobs are forgotten after the retention; live ones stay."""
    farm = Farm(SchedulerCore(SchedulerSettings(retention_s=60.0)))
    farm.submit("done")
    farm.operator(CancelJob(id="c", job="done", at=farm.now))
    farm.submit("live")
    farm.now += 30.0
    assert farm.core.expire(farm.now) == 0
    farm.now += 31.0
    assert farm.core.expire(farm.now) == 1
    assert farm.core.state_of("done") is None
    assert farm.core.state_of("live") is not None


def test_a_snapshot_restores_the_same_core() -> None:
    """Encoding, decoding and restoring a snapshot gives back the same state and indexes."""
    farm = Farm()
    farm.register("a1")
    for job in ("a", "b", "c"):
        farm.submit(job, priority=Priority.LOW if job == "a" else Priority.HIGH)
    farm.plan()
    encoded = msgspec.msgpack.encode(farm.core.snapshot())
    restored = SchedulerCore.restore(
        msgspec.msgpack.decode(encoded, type=type(farm.core.snapshot())), farm.now
    )
    assert restored.jobs == farm.core.jobs
    assert restored.seqs == farm.core.seqs
    assert restored.agents == farm.core.agents
    assert restored.covered == farm.core.covered
    assert restored.holding == farm.core.holding
    assert restored.queued == farm.core.queued == 2


# --- property: the live core equals a replay of its log ---------------------------------------

JOBS = ("j1", "j2", "j3")
AGENTS = ("a1", "a2")
op = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(JOBS), st.booleans()),
    st.tuples(st.just("cancel"), st.sampled_from(JOBS), st.just(value=False)),
    st.tuples(st.just("pause"), st.sampled_from(JOBS), st.just(value=False)),
    st.tuples(st.just("resume"), st.sampled_from(JOBS), st.just(value=False)),
    st.tuples(st.just("respond"), st.sampled_from(JOBS), st.booleans()),
    st.tuples(st.just("start"), st.sampled_from(JOBS), st.just(value=False)),
    st.tuples(st.just("finish"), st.sampled_from(JOBS), st.booleans()),
    st.tuples(st.just("plan"), st.just(""), st.just(value=False)),
    st.tuples(st.just("tick"), st.sampled_from(AGENTS), st.booleans()),
    st.tuples(st.just("wait"), st.just(""), st.integers(1, 40)),
)


def _step(farm: Farm, name: str, job: str, flag: Any, serial: int) -> None:  # noqa: C901, PLR0912 -- one case per kind of step
    now, cid = farm.now, f"c{serial}"
    state = farm.core.jobs.get(job)
    match name:
        case "submit":
            farm.submit(job, approval_required=flag, max_retries=1)
        case "cancel":
            farm.operator(CancelJob(id=cid, job=job, at=now))
        case "pause":
            farm.operator(PauseJob(id=cid, job=job, at=now))
        case "resume":
            farm.operator(ResumeJob(id=cid, job=job, at=now))
        case "respond":
            farm.operator(RespondToJob(id=cid, job=job, at=now, approve=flag))
        case "start" if state is not None and state.agent:
            farm.report(job, Start(agent=state.agent, attempt=state.attempt))
        case "finish" if state is not None and state.agent:
            if flag:
                results = JobResults(wall_s=1.0)
                farm.report(
                    job, Complete(agent=state.agent, attempt=state.attempt, results=results)
                )
            else:
                reason = FailureReason.RUNTIME_ERROR
                farm.report(job, Fail(agent=state.agent, attempt=state.attempt, reason=reason))
        case "plan":
            farm.plan()
        case "tick":
            if flag:
                farm.beat(job)
            farm.tick()
        case "wait":
            farm.now += flag
        case _:
            pass


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=60))
def test_live_state_equals_the_replayed_log(steps: list[tuple[str, str, Any]]) -> None:
    """Whatever interleaving of commands, reports, placements and time: replay == live."""
    farm = Farm()
    for agent in AGENTS:
        farm.register(agent, slots=1)
    for serial, (name, job, flag) in enumerate(steps):
        _step(farm, name, job, flag, serial)
    replayed = SchedulerCore()
    for seq, event in enumerate(farm.log, 1):
        replayed.apply(seq, event, farm.now)
    assert replayed.jobs == farm.core.jobs
    assert replayed.seqs == farm.core.seqs
    assert replayed.agents == farm.core.agents
    assert replayed.holding == {
        a: h for a, h in farm.core.holding.items() if h or a in replayed.holding
    }
    assert replayed.queued == farm.core.queued
    # No attempt of any job was ever assigned twice.
    attempts = [(e.job, e.attempt) for e in farm.log if isinstance(e, JobAssigned)]
    assert len(attempts) == len(set(attempts))


def test_an_operator_quarantines_and_clears_an_agent() -> None:
    """Quarantine stops placements on the agent; clearing lets work go there again."""
    farm = Farm()
    farm.register("a1")
    (event,) = farm.operator(QuarantineAgent(id="q1", agent="a1", at=farm.now, reason="bad RAM"))
    assert isinstance(event, AgentQuarantined)
    assert farm.core.agents["a1"].quarantine_reason == "bad RAM"
    assert farm.operator(QuarantineAgent(id="q2", agent="a1", at=farm.now)) == []  # already
    farm.submit("j")
    assert farm.plan() == []
    (cleared,) = farm.operator(ClearAgent(id="c1", agent="a1", at=farm.now))
    assert isinstance(cleared, AgentCleared)
    assert farm.assigned(farm.plan()) == [("j", "a1")]
    assert farm.operator(ClearAgent(id="c2", agent="nobody", at=farm.now)) == []


def test_an_operator_removes_an_agent_and_its_jobs_retry_elsewhere() -> None:
    """RemoveAgent records the agent's deregistration: no placements, held attempts retried."""
    farm = Farm()
    farm.register("a1")
    farm.register("a2")
    farm.beat("a1")
    farm.submit("j")
    ((_, holder),) = farm.assigned(farm.plan())
    (event,) = farm.operator(RemoveAgent(id="rm", agent=holder, at=farm.now, by="ops"))
    assert isinstance(event, AgentDeregistered)
    assert event.reason == "removed by ops"
    assert farm.core.agents[holder].status is AgentStatus.OFFLINE
    assert [type(e).__name__ for e in farm.tick()] == ["JobRetrying"]
    assert farm.operator(RemoveAgent(id="rm2", agent=holder, at=farm.now)) == []  # already
    assert farm.operator(RemoveAgent(id="rm3", agent="nobody", at=farm.now)) == []


def test_an_operator_retries_a_failed_job_and_it_is_placed_again() -> None:
    """A failed job that RetryJob queues again is placed as its next attempt."""
    farm = Farm()
    farm.register("a1")
    farm.submit("j", max_retries=0)
    farm.plan()
    farm.report("j", Start(agent="a1", attempt=1))
    farm.report("j", Fail(agent="a1", attempt=1, reason=FailureReason.USER_ERROR))
    assert farm.core.jobs["j"].status is S.FAILED
    farm.operator(RetryJob(id="r", job="j", at=farm.now))
    assert farm.core.queued == 1
    assert farm.assigned(farm.plan()) == [("j", "a1")]
    assert farm.core.jobs["j"].attempt == 2


def test_a_retried_job_keeps_its_place_in_the_queue() -> None:
    """A job whose agent was lost is queued again ahead of jobs submitted after it."""
    farm = Farm()
    farm.register("a1")
    farm.submit("first")
    assert farm.assigned(farm.plan()) == [("first", "a1")]
    farm.report("first", Start(agent="a1", attempt=1))
    farm.now += 1
    farm.submit("second")
    (event,) = farm.report("first", Fail(agent="a1", attempt=1, reason=FailureReason.RUNTIME_ERROR))
    assert isinstance(event, JobRetrying)
    farm.now = event.retry_at + 1
    farm.submit("third")
    assert [type(e).__name__ for e in farm.tick()] == ["JobQueued"]
    order = []
    for _ in range(3):
        (assigned,) = farm.assigned(farm.plan())
        order.append(assigned[0])
        attempt = farm.core.jobs[assigned[0]].attempt
        farm.report(assigned[0], Start(agent="a1", attempt=attempt))
        done = JobResults(wall_s=1)
        farm.report(assigned[0], Complete(agent="a1", attempt=attempt, results=done))
    assert order == ["first", "second", "third"]
    assert farm.core.jobs["first"].first_queued_at < farm.core.jobs["second"].first_queued_at
