"""Messages on an agent's work subject and its heartbeat subject.

These are not facts of the log: a dispatch is the scheduler's instruction to run an attempt
(its ``Nats-Msg-Id`` is job + attempt, so a re-sent dispatch is a no-op), a control message
asks the agent to act on a running job, and a heartbeat is the agent's latest telemetry.
"""

from __future__ import annotations

import msgspec

from events.base import Message
from events.enums import ControlAction
from events.spec import JobSpec


class Dispatch(Message, frozen=True, kw_only=True):
    """Run attempt ``attempt`` of ``job``; ``after_seq`` is the assignment's stream sequence."""

    job: str
    attempt: int
    spec: JobSpec
    budget_s: float
    retries: int = 0
    after_seq: int  # the JobAssigned's stream sequence: JobStarted must follow it directly
    at: float
    gpu: int | None = None  # which GPU runs NVENC work
    agent: str = ""  # the agent it was sent to; "" from a scheduler older than this field


class Control(Message, frozen=True, kw_only=True):
    """Pause, resume or cancel the attempt the agent is running."""

    job: str
    attempt: int
    action: ControlAction
    at: float
    cause: str = ""  # the operator command that asked: the agent's report names it as its cause


WorkMessage = Dispatch | Control


class RunningJob(msgspec.Struct, frozen=True, kw_only=True):
    """Live progress of one attempt.

    ``frames`` and ``out_time_s`` only grow while the engine's output advances: the scheduler
    judges liveness by them, so an attempt that keeps producing is never taken for a stalled one.
    ``media_s`` is what the attempt will encode once known (the spec's duration, or the input's
    as probed, whichever is less); None while unknown or for a live stream without an end.
    """

    job: str
    attempt: int
    percent: float = 0.0
    fps: float | None = None
    speed: float | None = None
    bitrate_kbps: float | None = None
    paused: bool = False
    frames: int = 0
    out_time_s: float | None = None
    media_s: float | None = None
    checked_frames: int = 0  # frames the quality pass compared, after the encode: progress too


class GpuTelemetry(msgspec.Struct, frozen=True, kw_only=True):
    """One GPU's readings at heartbeat time."""

    index: int
    utilization_percent: float | None = None
    memory_used_bytes: int | None = None
    temperature_c: float | None = None
    power_w: float | None = None
    encoder_sessions: int | None = None


class Heartbeat(Message, frozen=True, kw_only=True):
    """An agent's latest state: kept one per agent on the heartbeat stream."""

    agent: str
    at: float
    slots: int
    free_slots: int
    running: tuple[RunningJob, ...] = ()
    cpu_percent: float | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    power_w: float | None = None
    gpus: tuple[GpuTelemetry, ...] = ()
