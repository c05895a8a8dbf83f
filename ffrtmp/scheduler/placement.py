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
    """One GPU's room for more NVENC work during one planning pass."""

    __slots__ = ("encoders", "index", "memory_free_bytes", "sessions_free")

    def __init__(
        self, index: int, encoders: tuple[str, ...], sessions_free: int, memory_free_bytes: int
    ) -> None:
        """A GPU with this many free NVENC sessions and this much free memory."""
        self.index = index
        self.encoders = encoders
        self.sessions_free = sessions_free
        self.memory_free_bytes = memory_free_bytes

    def fits(self, encoder: str) -> bool:
        """Whether one more session of ``encoder`` fits."""
        return (
            encoder in self.encoders
            and self.sessions_free > 0
            and self.memory_free_bytes >= NVENC_VRAM_BYTES
        )


class AgentRoom:
    """An agent that may take work now, and how much; mutated as a pass places jobs on it."""

    __slots__ = ("agent", "caps", "gpus", "load", "slots", "used")

    def __init__(
        self,
        agent: str,
        caps: Capabilities,
        slots: int,
        used: int = 0,
        gpus: Iterable[GpuRoom] = (),
        load: float = 0.0,
    ) -> None:
        """``used`` of ``slots`` taken; ``load`` (0..1) breaks ties: the least loaded wins."""
        self.agent = agent
        self.caps = caps
        self.slots = slots
        self.used = used
        self.gpus = list(gpus)
        self.load = load

    @property
    def free(self) -> int:
        """Slots still free."""
        return self.slots - self.used

    def rank(self, cpu_work: bool) -> tuple[int, float, float, str]:
        """Order among candidates: CPU work avoids GPU agents, then the emptiest, least loaded."""
        avoid = 1 if cpu_work and self.caps.gpus else 0
        return (avoid, self.used / max(self.slots, 1), self.load, self.agent)


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where a job goes: the agent and, for NVENC work, the GPU."""

    agent: str
    gpu: int | None = None


class Rooms:
    """The fleet's free room for one planning pass: place job after job, cheaply.

    Each kind of need gets a heap of the agents able to serve it, built on first use. Taking
    a slot changes an agent's rank in every heap it is in; entries are re-ranked lazily when
    they surface, so a placement costs O(log agents), not a scan of the fleet. Room only
    shrinks during a pass, so an agent found full for a need is dropped from that heap.
    """

    def __init__(
        self,
        rooms: Iterable[AgentRoom],
        able: Callable[[Needs, AgentRoom], bool] | None = None,
    ) -> None:
        """Start from each placeable agent's room; ``able`` may answer ``lacks`` from a cache."""
        self._rooms = [room for room in rooms if room.free > 0]
        self._heaps: dict[Needs, list[tuple[tuple[int, float, float, str], AgentRoom]]] = {}
        self._able = able or (lambda needs, room: not lacks(needs, room.caps))

    @property
    def free(self) -> int:
        """Free slots left across the fleet."""
        return sum(room.free for room in self._rooms)

    def _heap(self, needs: Needs) -> list[tuple[tuple[int, float, float, str], AgentRoom]]:
        heap = self._heaps.get(needs)
        if heap is None:
            cpu_work = not needs.gpu
            heap = [
                (room.rank(cpu_work), room)
                for room in self._rooms
                if room.free > 0 and self._able(needs, room)
            ]
            heapq.heapify(heap)
            self._heaps[needs] = heap
        return heap

    def place(self, needs: Needs) -> Placement | None:
        """Reserve room for one job with these needs on the best agent; None when none has it."""
        heap = self._heap(needs)
        cpu_work = not needs.gpu
        while heap:
            rank, room = heap[0]
            if room.free <= 0:
                heapq.heappop(heap)
                continue
            current = room.rank(cpu_work)
            if current != rank:
                heapq.heapreplace(heap, (current, room))
                continue
            gpu = None
            if needs.gpu:
                gpu = next((g for g in room.gpus if g.fits(needs.encoder)), None)
                if gpu is None:
                    heapq.heappop(heap)
                    continue
                gpu.sessions_free -= 1
                gpu.memory_free_bytes -= NVENC_VRAM_BYTES
            room.used += 1
            heapq.heapreplace(heap, (room.rank(cpu_work), room))
            return Placement(agent=room.agent, gpu=gpu.index if gpu else None)
        return None


def choose(needs: Needs, rooms: Iterable[AgentRoom]) -> Placement | None:
    """The best agent with room for one job now (and reserve it), or None when it must wait."""
    return Rooms(rooms).place(needs)
