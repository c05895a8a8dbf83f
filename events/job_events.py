"""Facts about jobs: the events that make up a job's history, and the results it reports."""

from __future__ import annotations

import msgspec

from events.base import JobEventBase
from events.enums import ControlAction, FailureReason, JobStatus, TimeoutKind
from events.spec import JobSpec


class JobResults(msgspec.Struct, frozen=True, kw_only=True):
    """What an attempt measured. A figure the machine could not measure is None, never zero."""

    wall_s: float
    frames: int = 0
    encode_fps: float | None = None
    speed: float | None = None  # media seconds per wall second
    cpu_s: float | None = None
    output_bytes: int | None = None
    bitrate_kbps: float | None = None
    energy_j: float | None = None
    psnr: float | None = None
    ssim: float | None = None
    vmaf: float | None = None
    stalls: int | None = None  # times a live output fell behind real time (speed < 1)
    frames_per_joule: float | None = None  # efficiency, where energy was measured
    frames_per_cpu_s: float | None = None  # efficiency on any machine
    qoe: float | None = None  # 0..100 from VMAF and stalls; formula in agent/scores.py


class JobSubmitted(JobEventBase, frozen=True, kw_only=True):
    """The job exists. Queued at once, or pending when its spec asks for approval."""

    spec: JobSpec
    by: str = ""


class JobAwaitingInput(JobEventBase, frozen=True, kw_only=True):
    """The job waits for an operator's answer to ``prompt`` before it may run."""

    prompt: str


class JobInputReceived(JobEventBase, frozen=True, kw_only=True):
    """An operator answered yes, and the job queues (a denial is ``JobCanceled``, "denied").

    Logs written before that recorded a denial here too (``approved`` false); it folds as a cancel.
    """

    answer: str
    approved: bool
    by: str = ""


class JobQueued(JobEventBase, frozen=True, kw_only=True):
    """The job waits for placement again: its retry backoff came due, or an operator retried it.

    ``by`` is set on an operator's retry of a failed or canceled job (``RetryJob``).
    """

    reason: str = ""
    by: str = ""


class JobAssigned(JobEventBase, frozen=True, kw_only=True):
    """The scheduler placed attempt ``attempt`` on ``agent`` (and GPU ``gpu``) with a budget."""

    agent: str
    attempt: int
    budget_s: float
    gpu: int | None = None  # the GPU index for NVENC work: placement counts sessions per GPU
    spec: JobSpec | None = None
    """What to run: the assignment is the agent's dispatch. None in logs older than that."""
    retries: int = 0  # retries decided before this attempt (for the agent's reports)


class JobRejected(JobEventBase, frozen=True, kw_only=True):
    """No registered agent could ever run the job; terminal."""

    reason: FailureReason = FailureReason.CAPABILITY_MISMATCH
    message: str


class JobStarted(JobEventBase, frozen=True, kw_only=True):
    """The agent started FFmpeg for the attempt."""

    agent: str
    attempt: int


class JobProgressed(JobEventBase, frozen=True, kw_only=True):
    """A coarse milestone (e.g. every 25 %); live progress travels in heartbeats."""

    agent: str
    attempt: int
    percent: float


class JobControlRequested(JobEventBase, frozen=True, kw_only=True):
    """An operator asked the agent running the job to pause, resume or cancel it."""

    action: ControlAction
    agent: str
    by: str = ""


class JobPaused(JobEventBase, frozen=True, kw_only=True):
    """The job is paused; ``resume_to`` is where resuming takes it (queued or running)."""

    resume_to: JobStatus
    agent: str = ""  # set when the agent stopped a running process
    by: str = ""


class JobResumed(JobEventBase, frozen=True, kw_only=True):
    """The pause ended."""

    agent: str = ""
    by: str = ""


class JobCompleted(JobEventBase, frozen=True, kw_only=True):
    """The attempt finished and produced its output; terminal."""

    agent: str
    attempt: int
    results: JobResults


class JobRetrying(JobEventBase, frozen=True, kw_only=True):
    """The attempt failed, retryably, with retries left: it queues again at ``retry_at``."""

    agent: str = ""
    attempt: int
    reason: FailureReason
    message: str = ""
    retry_at: float


class JobFailed(JobEventBase, frozen=True, kw_only=True):
    """The job failed for good: a reason that never retries, or no retries left; terminal."""

    agent: str = ""
    attempt: int
    reason: FailureReason
    message: str = ""


class JobTimedOut(JobEventBase, frozen=True, kw_only=True):
    """The attempt ran out of time; it retries at ``retry_at``, or fails when that is None."""

    agent: str
    attempt: int
    kind: TimeoutKind
    retry_at: float | None


class JobCanceled(JobEventBase, frozen=True, kw_only=True):
    """The job was canceled; terminal. ``agent`` is set when an agent stopped a process.

    A denied approval is a cancel with reason ``denied`` and the approver's ``answer``.
    """

    agent: str = ""
    by: str = ""
    reason: str = ""
    answer: str = ""


class CommandRefused(JobEventBase, frozen=True, kw_only=True):
    """A command did not apply to the job; the reason is written for a person. No state change."""

    command_id: str
    command: str
    reason: str


JobEvent = (
    JobSubmitted
    | JobAwaitingInput
    | JobInputReceived
    | JobQueued
    | JobAssigned
    | JobRejected
    | JobStarted
    | JobProgressed
    | JobControlRequested
    | JobPaused
    | JobResumed
    | JobCompleted
    | JobRetrying
    | JobFailed
    | JobTimedOut
    | JobCanceled
    | CommandRefused
)
