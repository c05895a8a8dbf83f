"""Facts about agents: what they can do and whether they are there."""

from __future__ import annotations

import msgspec

from events.base import AgentEventBase


class GpuInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One NVIDIA GPU as NVML and a test encode saw it."""

    index: int
    name: str
    memory_bytes: int
    nvenc_sessions: int  # concurrent NVENC sessions it allows (consumer cards allow few)
    encoders: tuple[str, ...] = ()  # hardware encoders a test encode proved


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent can run; placement matches job needs against this."""

    hostname: str = ""
    engines: tuple[str, ...] = ("ffmpeg",)
    encoders: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()  # quality filters: libvmaf, psnr, ssim
    protocols: tuple[str, ...] = ()  # rtmp, srt, …
    cpu_model: str = ""
    cpu_cores: int = 1
    ram_bytes: int = 0
    gpus: tuple[GpuInfo, ...] = ()
    ffmpeg_version: str = ""
    gst_elements: tuple[str, ...] = ()  # the GStreamer elements scenarios use that it has
    gst_version: str = ""


class AgentRegistered(AgentEventBase, frozen=True, kw_only=True):
    """The agent came up (or came back) and offers ``slots`` concurrent jobs."""

    capabilities: Capabilities
    slots: int


class AgentDeregistered(AgentEventBase, frozen=True, kw_only=True):
    """The agent shut down cleanly."""

    reason: str = ""


class AgentLost(AgentEventBase, frozen=True, kw_only=True):
    """The agent missed heartbeats past the threshold; its jobs retry elsewhere."""

    last_seen: float
    jobs: tuple[str, ...] = ()


class AgentReturned(AgentEventBase, frozen=True, kw_only=True):
    """A lost agent was heard from again."""


class AgentQuarantined(AgentEventBase, frozen=True, kw_only=True):
    """No new placements on this agent until an operator clears it."""

    reason: str
    by: str = ""


class AgentCleared(AgentEventBase, frozen=True, kw_only=True):
    """An operator lifted the quarantine."""

    by: str = ""


AgentEvent = (
    AgentRegistered
    | AgentDeregistered
    | AgentLost
    | AgentReturned
    | AgentQuarantined
    | AgentCleared
)
