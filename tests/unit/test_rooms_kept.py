"""The scheduler keeps its agents' room in step with the log instead of rebuilding it each pass.

Whatever happens (registrations, removals, quarantines, placements, starts, ends, heartbeats
with changing load and GPU memory, lost agents), the kept room must equal the room computed
from scratch, and a planning pass must place exactly as a core restored from a snapshot (whose
room is built afresh) would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events.agent_events import AgentDeregistered, Capabilities, GpuInfo
from events.commands import ClearAgent, Complete, Fail, QuarantineAgent, RemoveAgent, Start
from events.enums import FailureReason
from events.job_events import JobAssigned, JobResults
from events.work import GpuTelemetry, Heartbeat
from ffrtmp.scheduler.core import Decision, SchedulerCore
from ffrtmp.scheduler.placement import NVENC_VRAM_BYTES
from tests.farm import CPU, GPU
from tests.unit.test_scheduler_core import Farm

GIB = 1024**3
TWO_GPUS = Capabilities(
    hostname="big",
    encoders=("libx264", "h264_nvenc", "hevc_nvenc"),
    gpus=tuple(
        GpuInfo(
            index=index,
            name="L4",
            memory_bytes=2 * GIB,
            nvenc_sessions=3,
            encoders=("h264_nvenc", "hevc_nvenc"),
        )
        for index in (0, 1)
    ),
)
FLEET = {"cpu": CPU, "gpu": GPU, "big": TWO_GPUS}
AGENTS = ("a1", "a2", "a3")
JOBS = tuple(f"j{i}" for i in range(8))
SCENARIOS = ("720p-h264", "1080p-h264-nvenc")


def expected_rooms(core: SchedulerCore) -> dict[str, tuple[Any, ...]]:
    """Each placeable agent's room computed from scratch, as every pass used to."""
    rooms = {}
    for agent, state in core.agents.items():
        if not state.placeable or state.capabilities is None:
            continue
        held = core.holding.get(agent, {})
        load = core.loads.get(agent)
        memory = load.gpu_memory_used if load else {}
        gpus = []
        for gpu in state.capabilities.gpus:
            on_gpu = sum(1 for g in held.values() if g == gpu.index)
            used = max(memory.get(gpu.index, 0), on_gpu * NVENC_VRAM_BYTES)
            gpus.append((gpu.index, gpu.nvenc_sessions - on_gpu, gpu.memory_bytes - used))
        rooms[agent] = (state.slots, len(held), load.cpu if load else 0.0, tuple(gpus))
    return rooms


def kept_rooms(core: SchedulerCore) -> dict[str, tuple[Any, ...]]:
    """The core's kept rooms, in the same shape; nothing is left reserved between passes."""
    kept = {}
    for agent in core.agents:
        room = core.rooms().room(agent)
        if room is None:
            continue
        assert room.pending == 0
        gpus = tuple((g.index, g.sessions_free, g.memory_free_bytes) for g in room.gpus)
        kept[agent] = (room.slots, room.held, room.load, gpus)
    return kept


def outcome(decisions: Sequence[Decision]) -> set[tuple[str, str, int | None]]:
    """Where a pass placed what, as a set.

    Rejections are left out: they depend on which jobs the core counts as fresh (a restored
    core counts every queued one), not on the room.
    """
    return {
        (event.job, event.agent, event.gpu)
        for decision in decisions
        for event in decision.events
        if isinstance(event, JobAssigned)
    }


class Fleet(Farm):
    """The core farm with heartbeats that carry load and GPU memory."""

    def __init__(self) -> None:
        super().__init__()
        self.beats: dict[str, Heartbeat] = {}

    def load(self, agent: str, cpu: float, memory: int) -> None:
        gpus = (GpuTelemetry(index=0, memory_used_bytes=memory),) if memory else ()
        beat = Heartbeat(
            agent=agent, at=self.now, slots=1, free_slots=1, cpu_percent=cpu, gpus=gpus
        )
        self.beats[agent] = beat
        self.core.heard_from(beat, self.now)

    def fresh_core(self) -> SchedulerCore:
        """A core restored from this one's snapshot, told the same last heartbeats."""
        snapshot = self.core.snapshot()
        encoded = msgspec.msgpack.encode(snapshot)
        fresh = SchedulerCore.restore(
            msgspec.msgpack.decode(encoded, type=type(snapshot)), self.now
        )
        for beat in self.beats.values():
            fresh.heard_from(beat, self.now)
        return fresh


agent_step = st.one_of(
    st.tuples(st.just("register"), st.sampled_from(AGENTS), st.sampled_from(sorted(FLEET))),
    st.tuples(st.just("slots"), st.sampled_from(AGENTS), st.integers(1, 3)),
    st.tuples(st.just("remove"), st.sampled_from(AGENTS), st.booleans()),
    st.tuples(st.just("quarantine"), st.sampled_from(AGENTS), st.booleans()),
    st.tuples(st.just("wait"), st.just(""), st.integers(1, 60)),
)
job_step = st.one_of(
    st.tuples(st.just("load"), st.sampled_from(AGENTS), st.integers(0, 100)),
    st.tuples(st.just("submit"), st.sampled_from(JOBS), st.sampled_from(SCENARIOS)),
    st.tuples(st.just("start"), st.sampled_from(JOBS), st.just(value=None)),
    st.tuples(st.just("finish"), st.sampled_from(JOBS), st.booleans()),
    st.tuples(st.just("plan"), st.just(""), st.booleans()),
)
# Agent events rebuild the heaps; most steps are job steps, so kept heaps live long.
step = st.one_of(agent_step, job_step, job_step, job_step, job_step)


def _act(fleet: Fleet, name: str, target: str, value: Any, serial: int) -> None:  # noqa: C901, PLR0912 -- one case per kind of step
    now, cid = fleet.now, f"c{serial}"
    state = fleet.core.jobs.get(target)
    match name:
        case "register":
            fleet.register(target, FLEET[value], slots=2)
        case "slots" if target in fleet.core.agents:
            caps = fleet.core.agents[target].capabilities or CPU
            fleet.register(target, caps, slots=value)
        case "remove" if value:
            fleet.operator(RemoveAgent(id=cid, agent=target, at=now))
        case "remove":
            fleet.append(AgentDeregistered(agent=target, at=now, cause="exit"))
        case "quarantine" if value:
            fleet.operator(QuarantineAgent(id=cid, agent=target, at=now))
        case "quarantine":
            fleet.operator(ClearAgent(id=cid, agent=target, at=now))
        case "load":
            fleet.load(target, float(value), value * 40 * 1024 * 1024)
        case "submit":
            fleet.submit(target, scenario=value, max_retries=1)
        case "start" if state is not None and state.agent:
            fleet.report(target, Start(agent=state.agent, attempt=state.attempt))
        case "finish" if state is not None and state.agent and value:
            results = JobResults(wall_s=1.0)
            fleet.report(
                target, Complete(agent=state.agent, attempt=state.attempt, results=results)
            )
        case "finish" if state is not None and state.agent:
            reason = FailureReason.RUNTIME_ERROR
            fleet.report(target, Fail(agent=state.agent, attempt=state.attempt, reason=reason))
        case "plan":
            expected = outcome(fleet.fresh_core().plan(now).decisions)
            plan = fleet.core.plan(now)
            assert outcome(plan.decisions) == expected
            if value:  # else the appends failed (an outage): the pass's reservations are void
                fleet.commit(plan.decisions)
                fleet.core.planned(plan)
        case "wait":
            fleet.now += value
            fleet.tick()
        case _:
            pass


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(sorted(FLEET)), min_size=3, max_size=3), st.lists(step, max_size=80)
)
def test_kept_room_equals_room_built_afresh(
    kinds: list[str], steps: list[tuple[str, str, Any]]
) -> None:
    """After every step the kept room is the computed one, and passes place the same."""
    fleet = Fleet()
    for agent, kind in zip(AGENTS, kinds, strict=True):
        fleet.register(agent, FLEET[kind], slots=2)
    for serial, (name, target, value) in enumerate(steps):
        _act(fleet, name, target, value, serial)
        assert kept_rooms(fleet.core) == expected_rooms(fleet.core)
        rooms = fleet.core.rooms()
        assert rooms.free == sum(max(r[0] - r[1], 0) for r in expected_rooms(fleet.core).values())


def test_a_thousand_agents_are_not_rebuilt_for_a_pass() -> None:
    """A pass that places one job among 1,000 agents builds no room and touches few."""
    fleet = Fleet()
    for index in range(1000):
        fleet.register(f"agent-{index:04d}", CPU, slots=4)
    fleet.submit("first")
    fleet.plan()  # builds the heap for this kind of need once
    rooms = fleet.core.rooms()
    before = {agent: rooms.room(agent) for agent in fleet.core.agents}
    fleet.submit("second")
    (placed,) = fleet.assigned(fleet.plan())
    assert placed[0] == "second"
    assert all(rooms.room(agent) is room for agent, room in before.items())
    heap = rooms._heaps[next(iter(rooms._heaps))]
    assert len(heap) <= 1000 + 8  # a few fresh entries, not one per agent per pass


def _finish(fleet: Fleet, job: str) -> None:
    state = fleet.core.jobs[job]
    fleet.report(job, Start(agent=state.agent, attempt=state.attempt))
    results = JobResults(wall_s=1.0)
    fleet.report(job, Complete(agent=state.agent, attempt=state.attempt, results=results))


X265_ONLY = Capabilities(hostname="x265", encoders=("libx265",))  # room an h264 job cannot use


def test_a_slot_freed_by_an_ended_job_takes_work_again() -> None:
    """An agent found full in one pass is placed into again once a job of its ends."""
    fleet = Fleet()
    fleet.register("a1", CPU, slots=1)
    fleet.register("other", X265_ONLY, slots=1)  # keeps the fleet's free room above zero
    fleet.submit("j1")
    assert fleet.assigned(fleet.plan()) == [("j1", "a1")]
    fleet.submit("j2")
    assert fleet.assigned(fleet.plan()) == []  # a1 surfaces full and leaves the heap
    _finish(fleet, "j1")
    assert fleet.assigned(fleet.plan()) == [("j2", "a1")]


def test_a_pass_whose_appends_failed_leaves_the_room_as_it_was() -> None:
    """Reservations of a pass that never landed are given back: the next pass places again."""
    fleet = Fleet()
    fleet.register("a1", CPU, slots=1)
    fleet.register("other", X265_ONLY, slots=1)
    fleet.submit("j1")
    fleet.submit("j2")
    lost = fleet.core.plan(fleet.now)  # j1 reserved a1, j2 found it full: not committed
    assigned = [e.agent for d in lost.decisions for e in d.events if isinstance(e, JobAssigned)]
    assert assigned == ["a1"]
    assert fleet.core.rooms().free == 2
    assert fleet.assigned(fleet.plan()) == [("j1", "a1")]


def test_the_agent_a_job_ended_on_is_the_emptiest_again() -> None:
    """The rank of an agent whose job ended falls at once: it is chosen over a busier one."""
    fleet = Fleet()
    fleet.register("a1", CPU, slots=2)
    fleet.register("a2", CPU, slots=2)
    fleet.submit("j1")
    fleet.submit("j2")
    assert sorted(fleet.assigned(fleet.plan())) == [("j1", "a1"), ("j2", "a2")]
    _finish(fleet, "j2")
    fleet.submit("j3")
    assert fleet.assigned(fleet.plan()) == [("j3", "a2")]
