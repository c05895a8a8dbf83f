"""Pure placement: what a job needs, whether any agent could ever run it, and where it goes.

Capability is checked in two steps. ``why_never`` looks at every registered agent's
capabilities and says, in a sentence, what no agent has; such a job is rejected at once
(``capability_mismatch``) instead of waiting forever. ``choose`` then picks, among agents that
are placeable now, one with a free slot and, for NVENC work, a GPU with a free encoder session
and enough memory. CPU jobs prefer agents without a GPU while those have room, so GPU machines
stay free for the work only they can do.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from events.agent_events import Capabilities
from events.enums import QualityMetric
from events.scenarios import scenario
from events.spec import InputKind, JobSpec, OutputKind, input_kind, output_kind

QUALITY_FILTERS: Final = {
    QualityMetric.PSNR: "psnr",
    QualityMetric.SSIM: "ssim",
    QualityMetric.VMAF: "libvmaf",
}
NVENC_VRAM_BYTES: Final = 512 * 1024 * 1024  # a rough per-session working set for NVENC


class Needs(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent must offer to run a job."""

    engine: str
    encoder: str
    gpu: bool
    filters: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ()


def needs_of(spec: JobSpec) -> Needs:
    """Derive a job's needs from its spec and scenario."""
    chosen = scenario(spec.scenario)
    protocols = []
    if input_kind(spec.input) is InputKind.URL:
        protocols.append(spec.input.split("://", 1)[0].lower())
    if output_kind(spec.output) in {OutputKind.RTMP, OutputKind.SRT}:
        protocols.append(spec.output.split("://", 1)[0].lower())
    return Needs(
        engine=spec.engine,
        encoder=chosen.encoder,
        gpu=chosen.needs_gpu,
        filters=tuple(QUALITY_FILTERS[m] for m in spec.quality_metrics),
        protocols=tuple(protocols),
    )


def lacks(needs: Needs, caps: Capabilities) -> list[str]:
    """What this agent lacks for the job, as short phrases; empty when it could run it."""
    missing = []
    if needs.engine not in caps.engines:
        missing.append(f"engine {needs.engine}")
    if needs.gpu and not any(needs.encoder in gpu.encoders for gpu in caps.gpus):
        missing.append(f"an NVIDIA GPU with {needs.encoder}")
    elif needs.encoder not in caps.encoders:
        missing.append(f"encoder {needs.encoder}")
    missing += [f"filter {f}" for f in needs.filters if f not in caps.filters]
    missing += [f"protocol {p}" for p in needs.protocols if p not in caps.protocols]
    return missing


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


class GpuLoad(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU's room for more NVENC work."""

    index: int
    encoders: tuple[str, ...]
    sessions_free: int
    memory_free_bytes: int


class AgentRoom(msgspec.Struct, frozen=True, kw_only=True):
    """An agent that may take work now, and how much."""

    agent: str
    caps: Capabilities
    free_slots: int
    gpus: tuple[GpuLoad, ...] = ()
    load: float = 0.0  # 0..1, breaks ties: the least loaded agent wins


class Placement(msgspec.Struct, frozen=True, kw_only=True):
    """Where a job goes: the agent and, for NVENC work, the GPU."""

    agent: str
    gpu: int | None = None


def _gpu_for(needs: Needs, room: AgentRoom) -> int | None:
    for gpu in room.gpus:
        if (
            needs.encoder in gpu.encoders
            and gpu.sessions_free > 0
            and gpu.memory_free_bytes >= NVENC_VRAM_BYTES
        ):
            return gpu.index
    return None


def choose(needs: Needs, rooms: Iterable[AgentRoom]) -> Placement | None:
    """The best agent with room for the job now, or None when it must wait."""
    fits: list[tuple[tuple[int, float, str], Placement]] = []
    for room in rooms:
        if room.free_slots <= 0 or lacks(needs, room.caps):
            continue
        if needs.gpu:
            gpu = _gpu_for(needs, room)
            if gpu is not None:
                fits.append(((0, room.load, room.agent), Placement(agent=room.agent, gpu=gpu)))
            continue
        has_gpu = 1 if room.caps.gpus else 0  # CPU work prefers agents without a GPU
        fits.append(((has_gpu, room.load, room.agent), Placement(agent=room.agent)))
    return min(fits, key=lambda fit: fit[0])[1] if fits else None
