"""What the benchmarks write: realistic job events, as the scheduler and an agent append them.

Pure: ids and times are derived from arguments. A job's history is the common one, submitted,
assigned, started, completed, with a full spec and measured results, so events have the sizes
the log really holds (about 110 to 410 bytes of JSON, plus three headers).
"""

from __future__ import annotations

from typing import Final

from events import subjects as wire
from events.agent_events import Capabilities
from events.base import Event
from events.enums import Priority, Queue
from events.job_events import JobAssigned, JobCompleted, JobResults, JobStarted, JobSubmitted
from events.spec import JobSpec
from events.store import Append
from events.subjects import SCHEDULER_WRITER, Subjects

AGENT: Final = "agent-7"
T0: Final = 1_767_225_600.0  # 2026-01-01, any fixed instant will do
SPEC: Final = JobSpec(
    scenario="1080p-h264", duration_s=30.0, labels={"team": "video", "run": "bench"}
)
RESULTS: Final = JobResults(
    wall_s=38.2,
    frames=900,
    encode_fps=23.5,
    speed=0.78,
    cpu_s=70.1,
    output_bytes=22_500_000,
    bitrate_kbps=6000.0,
)
EVENTS_PER_JOB: Final = 4


def job_id(tag: str, index: int) -> str:
    """A distinct job id per tag and index."""
    return f"{tag}-{index:07d}"


def step(subjects: Subjects, job: str, index: int, at: float, expected: int) -> Append:
    """Event ``index`` (0 to 3) of a job's history, expecting ``expected`` as its last sequence.

    Event 0 is the submission, which expects 0: nothing on the job's subjects yet.
    """
    writer, event = _history(job, at)[index]
    return _append(subjects, job, writer, event, expected, type(event).__name__)


def headers(item: Append) -> dict[str, str]:
    """The headers ``JetStreamEventStore`` publishes an append with, for the raw side."""
    found = {wire.MSG_ID: item.msg_id}
    if item.expected is not None:
        found[wire.EXPECTED_LAST_SUBJECT_SEQ] = str(item.expected)
        if item.expected_subject is not None:
            found[wire.EXPECTED_LAST_SUBJECT_SEQ_SUBJECT] = item.expected_subject
    return found


def _history(job: str, at: float) -> list[tuple[str, Event]]:
    return [
        (
            SCHEDULER_WRITER,
            JobSubmitted(job=job, at=at, cause=f"cmd-{job}", spec=SPEC, by="operator"),
        ),
        (
            SCHEDULER_WRITER,
            JobAssigned(job=job, at=at + 1, cause="seq:1", agent=AGENT, attempt=1, budget_s=120.0),
        ),
        (AGENT, JobStarted(job=job, at=at + 2, cause="dispatch", agent=AGENT, attempt=1)),
        (
            AGENT,
            JobCompleted(
                job=job, at=at + 40, cause="ffmpeg", agent=AGENT, attempt=1, results=RESULTS
            ),
        ),
    ]


def _append(
    subjects: Subjects, job: str, writer: str, event: Event, expected: int, kind: str
) -> Append:
    return Append(
        subject=subjects.job_event(job, writer),
        event=event,
        msg_id=f"{job}:{kind}",
        expected=expected,
        expected_subject=subjects.job_events(job),
    )


# --- varied jobs, as a farm receives them ----------------------------------------------------

SCENARIOS: Final = ("720p-h264", "1080p-h264", "1080p-hevc", "1080p-av1", "480p-h264")
QUEUES: Final = (Queue.DEFAULT, Queue.BATCH, Queue.DEFAULT, Queue.LIVE)
PRIORITIES: Final = (Priority.MEDIUM, Priority.HIGH, Priority.MEDIUM, Priority.LOW)
TEAMS: Final = ("news", "sports", "archive", "ads")
CAPS: Final = Capabilities(
    encoders=("libx264", "libx265", "libsvtav1", "aac"),
    filters=("psnr", "ssim"),
    protocols=("file", "http", "https", "rtmp", "srt"),
    cpu_model="AMD EPYC 7763 64-Core Processor",
    cpu_cores=32,
    ram_bytes=128 << 30,
    ffmpeg_version="7.1",
)


def job_spec(index: int, tag: str = "bench") -> JobSpec:
    """A varied CPU job: scenario, queue, priority, duration, its own input and output files."""
    name = SCENARIOS[index % len(SCENARIOS)]
    return JobSpec(
        scenario=name,
        input=f"/srv/media/ingest/2026-{index % 12 + 1:02d}/cam-{index % 97:03d}/{index:07d}.mov",
        output=f"/srv/media/out/{tag}/{index:07d}-{name}.mp4",
        duration_s=30.0 + (index * 37) % 3570,
        queue=QUEUES[index // 3 % len(QUEUES)],
        priority=PRIORITIES[index // 5 % len(PRIORITIES)],
        labels={"team": TEAMS[index // 4 % len(TEAMS)]} if index % 4 == 0 else {},
    )
