"""Closed sets of names the log and the CLI share: states, queues, priorities, reasons.

Each is a ``StrEnum`` so it encodes as its plain value on the wire and in SQL, and a new member
is a new string, never a renumbering.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is in its life; derived by folding its events."""

    NEW = "new"  # no JobSubmitted yet: only refusals were recorded for this id
    PENDING = "pending"  # awaiting an operator's answer
    QUEUED = "queued"
    ASSIGNED = "assigned"
    RUNNING = "running"
    PAUSED = "paused"
    RETRYING = "retrying"  # failed or timed out; queued again when its backoff is due
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    REJECTED = "rejected"


TERMINAL_STATUSES = frozenset(
    {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELED, JobStatus.REJECTED}
)
HOLDING_STATUSES = frozenset({JobStatus.ASSIGNED, JobStatus.RUNNING, JobStatus.PAUSED})
"""An agent holds the job: a slot is taken, and losing the agent loses the attempt."""
TICKING_STATUSES = frozenset({JobStatus.ASSIGNED, JobStatus.RUNNING})
"""Held and not paused: the attempt's time budget and stall window run."""
STARTED_STATUSES = frozenset({JobStatus.RUNNING, JobStatus.PAUSED})
"""The attempt has started on its agent: it has progress to show and can be completed."""


class Queue(StrEnum):
    """Which queue a job waits in; ``live`` is served before ``default`` before ``batch``."""

    LIVE = "live"
    DEFAULT = "default"
    BATCH = "batch"


class Priority(StrEnum):
    """Priority inside a queue."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class FailureReason(StrEnum):
    """Why an attempt failed; decides whether it is retried."""

    CAPABILITY_MISMATCH = "capability_mismatch"  # no agent could ever run it: never retried
    RUNTIME_ERROR = "runtime_error"  # FFmpeg crashed or exited non-zero: retried
    TIMEOUT = "timeout"  # over its time budget or stalled: retried
    USER_ERROR = "user_error"  # bad input or parameters: never retried
    AGENT_LOST = "agent_lost"  # the agent went silent mid-job: retried elsewhere
    RESOURCE_ERROR = "resource_error"  # the agent lacked disk or memory: retried elsewhere


RETRYABLE_REASONS = frozenset(
    {
        FailureReason.RUNTIME_ERROR,
        FailureReason.TIMEOUT,
        FailureReason.AGENT_LOST,
        FailureReason.RESOURCE_ERROR,
    }
)


class Engine(StrEnum):
    """The media engine that runs a job."""

    FFMPEG = "ffmpeg"
    GSTREAMER = "gstreamer"  # placed only on agents that advertise it with the elements needed
    AUTO = "auto"  # whichever this job's agent has: FFmpeg when it can, else GStreamer


class QualityMetric(StrEnum):
    """Quality scores an agent computes against the source when a job asks."""

    PSNR = "psnr"
    SSIM = "ssim"
    VMAF = "vmaf"


class ControlAction(StrEnum):
    """What an operator asked of a job an agent is running."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"


class TimeoutKind(StrEnum):
    """Which clock ran out."""

    BUDGET = "budget"  # the attempt ran longer than its time budget
    STALLED = "stalled"  # the attempt reported no progress for too long


class AgentStatus(StrEnum):
    """Whether an agent can take work, as its events say."""

    UNKNOWN = "unknown"  # never registered
    ONLINE = "online"
    LOST = "lost"  # missed heartbeats past the threshold
    OFFLINE = "offline"  # deregistered cleanly
