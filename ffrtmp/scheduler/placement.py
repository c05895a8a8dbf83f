"""Pure placement: what a job needs, whether any agent could ever run it, and where it goes.

What a job needs and what an agent lacks for it live in ``agent.needs``, which the agent reads
too (to pick the engine of an ``auto`` job). Capability is checked in two steps. ``why_never``
looks at every registered agent's capabilities and says, in a sentence, what no agent has; such
a job is rejected at once
(``capability_mismatch``) instead of waiting forever. ``choose`` then picks, among agents that
are placeable now, one with a free slot and, for NVENC work, a GPU with a free encoder session
and enough memory. CPU jobs prefer agents without a GPU while those have room, so GPU machines
stay free for the work only they can do.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Final

import msgspec

from agent.needs import Needs, lacks, needs_of
from events.agent_events import Capabilities

__all__ = [
    "NVENC_VRAM_BYTES", "AgentRoom", "GpuRoom", "Needs", "Placement", "Rooms", "choose", "lacks",
    "needs_of", "why_never",
]  # fmt: skip

NVENC_VRAM_BYTES: Final = 512 * 1024 * 1024  # a rough per-session working set for NVENC


def why_never(needs: Needs, fleet: Iterable[Capabilities]) -> str | None:
    """None when some registered agent could run the job; else a sentence for the operator."""
    agents = list(fleet)
    if not agents:
        return None  # nobody registered yet: wait, do not reject
    gaps = [lacks(needs, caps) for caps in agents]
    if any(not gap for gap in gaps):
        return None
    closest = min(gaps, key=len)
    return (
        f"none of the {len(agents)} registered agents could ever run it: "
        f"the closest lacks {', '.join(closest)}"
    )


class GpuRoom:
    """One GPU's room for NVENC work: held in the log, reported in use, reserved by a pass."""

    __slots__ = ("encoders", "held", "index", "memory_bytes", "pending", "reported", "sessions")

    def __init__(
        self,
        index: int,
        encoders: tuple[str, ...],
        sessions: int,
        memory_bytes: int,
        held: int = 0,
        reported: int = 0,
    ) -> None:
        """A GPU with ``sessions`` NVENC sessions and ``memory_bytes``; ``held`` attempts on it."""
        self.index = index
        self.encoders = encoders
        self.sessions = sessions
        self.memory_bytes = memory_bytes
        self.held = held
        self.reported = reported  # memory in use as the last heartbeat said
        self.pending = 0

    @property
    def sessions_free(self) -> int:
        """NVENC sessions not held nor reserved."""
        return self.sessions - self.held - self.pending

    @property
    def memory_free_bytes(self) -> int:
        """The larger of reported use and held sessions' estimate, and the reserved, subtracted."""
        used = max(self.reported, self.held * NVENC_VRAM_BYTES)
        return self.memory_bytes - used - self.pending * NVENC_VRAM_BYTES

    def fits(self, encoder: str) -> bool:
        """Whether one more session of ``encoder`` fits."""
        return (
            encoder in self.encoders
            and self.sessions_free > 0
            and self.memory_free_bytes >= NVENC_VRAM_BYTES
        )


class AgentRoom:
    """An agent that may take work: the attempts the log says it holds, and a pass reserved."""

    __slots__ = ("agent", "caps", "gpus", "held", "load", "pending", "slots", "version")

    def __init__(
        self,
        agent: str,
        caps: Capabilities,
        slots: int,
        used: int = 0,
        gpus: Iterable[GpuRoom] = (),
        load: float = 0.0,
    ) -> None:
        """``used`` of ``slots`` held; ``load`` (0..1) breaks ties: the least loaded wins."""
        self.agent = agent
        self.caps = caps
        self.slots = slots
        self.held = used
        self.pending = 0
        self.gpus = list(gpus)
        self.load = load
        self.version = 0  # bumped when its rank may have fallen: older heap entries are void

    @property
    def used(self) -> int:
        """Slots held or reserved."""
        return self.held + self.pending

    @property
    def free(self) -> int:
        """Slots still free."""
        return self.slots - self.used

    def gpu(self, index: int | None) -> GpuRoom | None:
        """The GPU with this index, if the agent has it."""
        return next((g for g in self.gpus if g.index == index), None)

    def rank(self, cpu_work: bool) -> tuple[int, float, float, str]:
        """Order among candidates: CPU work avoids GPU agents, then the emptiest, least loaded."""
        avoid = 1 if cpu_work and self.caps.gpus else 0
        return (avoid, self.used / max(self.slots, 1), self.load, self.agent)


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where a job goes: the agent and, for NVENC work, the GPU."""

    agent: str
    gpu: int | None = None


_Entry = tuple[tuple[int, float, float, str], int, AgentRoom]


class Rooms:
    """The fleet's room, kept in step with the log and the heartbeats, and placed into cheaply.

    The scheduler keeps one ``Rooms`` for its life: an agent's room is put when it becomes
    placeable and dropped when it stops, and changed as attempts are held and let go and as
    heartbeats report load, so a planning pass never rebuilds the fleet. Each kind of need
    has a heap of the agents able to serve it, built on first use and kept. A rank that rises
    (a slot taken) is corrected lazily when its entry surfaces; a rank that may have fallen
    (a slot freed, the load eased) bumps the room's version and pushes a fresh entry into
    every heap, the older entries becoming void; a heap grown stale is rebuilt. A placement
    costs O(log agents), however large the fleet. ``place`` reserves room for the pass under
    way and ``release`` gives every reservation back: the assignments that land are then held
    as the log says.
    """

    def __init__(
        self,
        rooms: Iterable[AgentRoom] = (),
        able: Callable[[Needs, AgentRoom], bool] | None = None,
    ) -> None:
        """Start from each placeable agent's room; ``able`` may answer ``lacks`` from a cache."""
        self._rooms: dict[str, AgentRoom] = {}
        self._heaps: dict[Needs, list[_Entry]] = {}
        self._able = able or (lambda needs, room: not lacks(needs, room.caps))
        self._free = 0
        self._reserved: list[tuple[AgentRoom, GpuRoom | None]] = []
        for room in rooms:
            self.put(room)

    @property
    def free(self) -> int:
        """Free slots left across the fleet."""
        return self._free

    def room(self, agent: str) -> AgentRoom | None:
        """The agent's room, or None when it is not placeable."""
        return self._rooms.get(agent)

    # --- kept in step --------------------------------------------------------------------------

    def put(self, room: AgentRoom) -> None:
        """Add or replace an agent's room (it registered, or may take work again)."""
        self.drop(room.agent)
        self._rooms[room.agent] = room
        self._free += max(room.free, 0)
        self._heaps.clear()  # rare: heaps are rebuilt on their next use

    def drop(self, agent: str) -> None:
        """The agent may not take work (lost, drained, quarantined, gone)."""
        room = self._rooms.pop(agent, None)
        if room is not None:
            self._free -= max(room.free, 0)
            self._heaps.clear()

    def hold(self, agent: str, gpu: int | None, delta: int) -> None:
        """The log gave (``delta`` 1) or took back (-1) an attempt on the agent and GPU."""
        room = self._rooms.get(agent)
        if room is None:
            return
        before = max(room.free, 0)
        room.held += delta
        on_gpu = room.gpu(gpu)
        if on_gpu is not None:
            on_gpu.held += delta
        self._free += max(room.free, 0) - before
        if delta < 0:
            self._refresh(room)

    def load(self, agent: str, cpu: float, gpu_memory_used: dict[int, int]) -> None:
        """The agent's heartbeat reported this CPU load and GPU memory in use."""
        room = self._rooms.get(agent)
        if room is None:
            return
        room.load = cpu
        for gpu in room.gpus:
            gpu.reported = gpu_memory_used.get(gpu.index, 0)
        self._refresh(room)

    def _refresh(self, room: AgentRoom) -> None:
        """The room's rank may have fallen: push it afresh into every heap it can serve."""
        room.version += 1
        for needs, heap in self._heaps.items():
            if len(heap) > 2 * len(self._rooms) + 64:
                self._heaps[needs] = self._build(needs)  # includes the room at its new rank
            elif self._able(needs, room):
                heapq.heappush(heap, (room.rank(not needs.gpu), room.version, room))

    # --- a planning pass -----------------------------------------------------------------------

    def _build(self, needs: Needs) -> list[_Entry]:
        cpu_work = not needs.gpu
        heap = [
            (room.rank(cpu_work), room.version, room)
            for room in self._rooms.values()
            if room.free > 0 and self._able(needs, room)
        ]
        heapq.heapify(heap)
        return heap

    def _heap(self, needs: Needs) -> list[_Entry]:
        heap = self._heaps.get(needs)
        if heap is None:
            heap = self._heaps[needs] = self._build(needs)
        return heap

    def place(self, needs: Needs) -> Placement | None:
        """Reserve room for one job with these needs on the best agent; None when none has it."""
        heap = self._heap(needs)
        cpu_work = not needs.gpu
        while heap:
            rank, version, room = heap[0]
            if version != room.version or room.free <= 0:
                heapq.heappop(heap)  # void (a fresher entry exists) or full: freed rooms return
                continue
            current = room.rank(cpu_work)
            if current != rank:
                heapq.heapreplace(heap, (current, version, room))
                continue
            gpu = None
            if needs.gpu:
                gpu = next((g for g in room.gpus if g.fits(needs.encoder)), None)
                if gpu is None:
                    heapq.heappop(heap)
                    continue
                gpu.pending += 1
            self._free -= 1
            room.pending += 1
            self._reserved.append((room, gpu))
            heapq.heapreplace(heap, (room.rank(cpu_work), version, room))
            return Placement(agent=room.agent, gpu=gpu.index if gpu else None)
        return None

    def release(self) -> None:
        """Give back every reservation of the pass (what lands is then held as the log says)."""
        touched: dict[str, AgentRoom] = {}
        for room, gpu in self._reserved:
            if gpu is not None:
                gpu.pending -= 1
            before = max(room.free, 0)
            room.pending -= 1
            self._free += max(room.free, 0) - before
            touched[room.agent] = room
        self._reserved.clear()
        for agent, room in touched.items():
            if self._rooms.get(agent) is room:
                self._refresh(room)


def choose(needs: Needs, rooms: Iterable[AgentRoom]) -> Placement | None:
    """The best agent with room for one job now (and reserve it), or None when it must wait."""
    return Rooms(rooms).place(needs)
