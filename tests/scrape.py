"""Helpers for the exporter tests: a hand-written history, an exporter in-process, scrapes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from prometheus_client.parser import text_string_to_metric_families

from agent.runtime_metrics import version
from events.agent_events import AgentLost, AgentRegistered, Capabilities
from events.base import Event
from events.enums import FailureReason, Priority, Queue
from events.jetstream import JetStreamEventStore
from events.job_events import (
    JobAssigned,
    JobCompleted,
    JobFailed,
    JobQueued,
    JobRejected,
    JobResults,
    JobRetrying,
    JobStarted,
    JobSubmitted,
)
from events.spec import JobSpec
from events.store import Append, EventStore
from events.subjects import SCHEDULER_WRITER, Subjects
from ffrtmp.exporter.service import Exporter, ExporterSettings
from tests.farm import wait_until

T0 = 1_000.0
STALE_AFTER_S = 600.0
"""A heartbeat of this test stays fresh for 10 minutes, however slow the machine is today."""
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def get(port: int, path: str = "/metrics") -> tuple[str, str]:
    """One HTTP GET on loopback: the status line and the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head, _, body = raw.decode().partition("\r\n\r\n")
    return head.splitlines()[0], body


def parse(text: str) -> Samples:
    """Every sample of an exposition, keyed by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample with this name and exactly these labels, None when absent."""
    return samples.get((name, frozenset(labels.items())))


class Log:
    """Appends a hand-written history with exact times."""

    def __init__(self, store: EventStore, subjects: Subjects | None = None) -> None:
        self.store = store
        found = subjects if subjects is not None else getattr(store, "subjects", None)
        self.subjects = found if isinstance(found, Subjects) else Subjects()
        self.count = 0

    async def job(self, job: str, *events: Event, writer: str = SCHEDULER_WRITER) -> None:
        subject = self.subjects.job_event(job, writer)
        for event in events:
            self.count += 1
            item = Append(subject=subject, event=event, msg_id=f"e{self.count}")
            await self.store.append(item)

    async def agent(self, *events: Event, agent: str) -> None:
        subject = self.subjects.agent_event(agent)
        for event in events:
            self.count += 1
            await self.store.append(Append(subject=subject, event=event, msg_id=f"e{self.count}"))


def submitted(job: str, at: float = T0, **spec: object) -> JobSubmitted:
    """A submission at ``at`` (720p-h264 unless the spec says otherwise)."""
    spec.setdefault("scenario", "720p-h264")
    return JobSubmitted(job=job, at=at, spec=JobSpec(**spec))  # type: ignore[arg-type]


RESULTS = JobResults(wall_s=10.0, encode_fps=60.0, energy_j=500.0, vmaf=90.0, psnr=40.0, ssim=0.95)


async def known_history(log: Log) -> None:
    """Six jobs and two agents; the expected figures are in ``check_known``."""
    caps = Capabilities(hostname="h", encoders=("libx264",))
    await log.agent(AgentRegistered(agent="a1", at=T0, capabilities=caps, slots=2), agent="a1")
    await log.agent(
        AgentRegistered(agent="a2", at=T0, capabilities=caps, slots=1),
        AgentLost(agent="a2", at=T0 + 5, last_seen=T0 + 1),
        agent="a2",
    )
    await log.job(
        "job1",
        submitted("job1"),
        JobAssigned(job="job1", at=T0 + 2, agent="a1", attempt=1, budget_s=60),
        JobStarted(job="job1", at=T0 + 2.5, agent="a1", attempt=1),
        JobCompleted(job="job1", at=T0 + 12.5, agent="a1", attempt=1, results=RESULTS),
    )
    await log.job(
        "job2",
        submitted("job2", queue=Queue.LIVE, priority=Priority.HIGH),
        JobAssigned(job="job2", at=T0 + 1, agent="a1", attempt=1, budget_s=60),
        JobStarted(job="job2", at=T0 + 1.25, agent="a1", attempt=1),
        JobRetrying(
            job="job2", at=T0 + 3, agent="a1", attempt=1,
            reason=FailureReason.RUNTIME_ERROR, retry_at=T0 + 10,
        ),
        JobQueued(job="job2", at=T0 + 10),
        JobAssigned(job="job2", at=T0 + 11, agent="a1", attempt=2, budget_s=60),
        JobStarted(job="job2", at=T0 + 11.125, agent="a1", attempt=2),
        JobFailed(
            job="job2", at=T0 + 12, agent="a1", attempt=2, reason=FailureReason.RUNTIME_ERROR
        ),
    )  # fmt: skip
    await log.job(
        "job3", submitted("job3", scenario="4K-nvenc"), JobRejected(job="job3", at=T0, message="x")
    )
    await log.job("job4", submitted("job4", queue=Queue.BATCH, priority=Priority.LOW))
    await log.job("job5", submitted("job5", priority=Priority.HIGH))
    await log.job(
        "job6",
        submitted("job6"),
        JobAssigned(job="job6", at=T0 + 3, agent="a1", attempt=1, budget_s=60),
        JobStarted(job="job6", at=T0 + 3.5, agent="a1", attempt=1),
    )


@contextlib.asynccontextmanager
async def running(
    store: JetStreamEventStore, settings: ExporterSettings | None = None
) -> AsyncIterator[Exporter]:
    """An exporter in this process on a free port until the block ends."""
    exporter = Exporter(
        store,
        settings or ExporterSettings(host="127.0.0.1", port=0, worker_stale_after_s=STALE_AFTER_S),
    )
    task = asyncio.create_task(exporter.run())

    async def listening() -> bool:
        if task.done():
            task.result()
        return exporter.listening.is_set()

    try:
        await wait_until(listening, "the exporter to listen")
        yield exporter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def scrape_when(port: int, check: Callable[[Samples], bool], what: str) -> Samples:
    """Scrape until ``check`` holds."""
    samples: Samples = {}

    async def holds() -> bool:
        nonlocal samples
        status, body = await get(port)
        assert status == "HTTP/1.1 200 OK"
        samples = parse(body)
        return check(samples)

    await wait_until(holds, what)
    return samples


def caught_up(samples: Samples) -> bool:
    """Whether the scrape says the projection has applied the whole log."""
    return value(samples, "ffrtmp_projection_lag_events") == 0


def check_runtime(body: str, component: str) -> None:
    """The process collector's figures and the build info with this version and component."""
    samples = {s.name: s for f in text_string_to_metric_families(body) for s in f.samples}
    assert samples["process_resident_memory_bytes"].value > 0
    assert samples["process_start_time_seconds"].value > 0
    info = samples["ffrtmp_build_info"]
    assert info.value == 1
    assert info.labels["component"] == component
    assert info.labels["version"] == version() != "unknown"
