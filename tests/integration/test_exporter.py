"""The exporter against a real nats-server: a known history in, exact metrics out over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from events.agent_events import AgentLost, AgentRegistered, Capabilities
from events.base import Event
from events.codec import encode
from events.enums import FailureReason, JobStatus, Priority, Queue
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
from events.store import Append
from events.subjects import SCHEDULER_WRITER
from events.work import GpuTelemetry, Heartbeat, RunningJob
from ffrtmp.exporter.service import Exporter, ExporterSettings
from tests.farm import wait_until

pytestmark = pytest.mark.anyio
T0 = 1_000.0
S = JobStatus
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

    def __init__(self, store: JetStreamEventStore) -> None:
        self.store = store
        self.count = 0

    async def job(self, job: str, *events: Event, writer: str = SCHEDULER_WRITER) -> None:
        subject = self.store.subjects.job_event(job, writer)
        for event in events:
            self.count += 1
            item = Append(subject=subject, event=event, msg_id=f"e{self.count}")
            await self.store.append(item)

    async def agent(self, *events: Event, agent: str) -> None:
        subject = self.store.subjects.agent_event(agent)
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


def check_known(samples: Samples) -> None:
    """The figures of ``known_history``, counted by hand."""
    entered = {"queued": 7, "assigned": 4, "running": 4, "completed": 1, "retrying": 1}
    entered |= {"failed": 1, "rejected": 1, "pending": 0, "paused": 0, "canceled": 0}
    for state, count in entered.items():
        assert value(samples, "ffrtmp_jobs_total", state=state) == count, state
    now = {"completed": 1, "failed": 1, "rejected": 1, "queued": 2, "running": 1, "assigned": 0}
    for state, count in now.items():
        assert value(samples, "ffrtmp_jobs_by_state", state=state) == count, state
    assert value(samples, "ffrtmp_active_jobs") == 1
    assert value(samples, "ffrtmp_queue_length") == 2
    for priority, count in {"high": 1, "medium": 0, "low": 1}.items():
        assert value(samples, "ffrtmp_queue_by_priority", priority=priority) == count
    for queue, count in {"live": 0, "default": 1, "batch": 1}.items():
        assert value(samples, "ffrtmp_queue_by_type", type=queue) == count
    assert value(samples, "ffrtmp_job_duration_seconds_count") == 1
    assert value(samples, "ffrtmp_job_duration_seconds_sum") == 10.0
    assert value(samples, "ffrtmp_job_duration_seconds_bucket", le="5.0") == 0
    assert value(samples, "ffrtmp_job_duration_seconds_bucket", le="10.0") == 1
    assert value(samples, "ffrtmp_job_wait_time_seconds_count") == 3  # first assignments
    assert value(samples, "ffrtmp_job_wait_time_seconds_sum") == 2 + 1 + 3
    assert value(samples, "ffrtmp_job_wait_time_seconds_bucket", le="1.0") == 1
    assert value(samples, "ffrtmp_schedule_to_start_seconds_count") == 4
    assert value(samples, "ffrtmp_schedule_to_start_seconds_sum") == 0.5 + 0.25 + 0.125 + 0.5
    assert value(samples, "ffrtmp_schedule_to_start_seconds_bucket", le="0.25") == 2
    assert value(samples, "ffrtmp_schedule_attempts_total", result="assigned") == 4
    assert value(samples, "ffrtmp_schedule_attempts_total", result="rejected") == 1
    assert value(samples, "ffrtmp_jobs_rejected_total") == 1
    assert value(samples, "ffrtmp_jobs_failed_total", reason="runtime_error") == 1
    assert value(samples, "ffrtmp_jobs_failed_total", reason="timeout") == 0
    assert value(samples, "ffrtmp_retries_total") == 1
    assert value(samples, "ffrtmp_nodes") == 2
    assert value(samples, "ffrtmp_nodes_by_status", status="online") == 1
    assert value(samples, "ffrtmp_nodes_by_status", status="lost") == 1
    assert value(samples, "ffrtmp_nodes_quarantined") == 0
    group = {"scenario": "720p-h264", "encoder": "libx264"}
    assert value(samples, "ffrtmp_result_encode_frames_per_second_sum", **group) == 60
    assert value(samples, "ffrtmp_result_energy_joules_count", **group) == 1
    assert value(samples, "ffrtmp_result_energy_joules_sum", **group) == 500
    assert value(samples, "ffrtmp_result_vmaf_score_sum", **group) == 90
    assert value(samples, "ffrtmp_result_psnr_decibels_sum", **group) == 40
    assert value(samples, "ffrtmp_result_ssim_score_sum", **group) == 0.95
    assert value(samples, "ffrtmp_result_vmaf_per_watt_sum", **group) == 90 / (500 / 10)


@contextlib.asynccontextmanager
async def running(
    store: JetStreamEventStore, settings: ExporterSettings | None = None
) -> AsyncIterator[Exporter]:
    """An exporter in this process on a free port until the block ends."""
    exporter = Exporter(store, settings or ExporterSettings(host="127.0.0.1", port=0))
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


async def test_known_history_has_exact_figures_and_keeps_them_across_restarts(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """A hand-counted history scrapes as counted; a new exporter on the log scrapes the same."""
    log = Log(jetstream_store)
    await known_history(log)
    settings = ExporterSettings(host="127.0.0.1", port=0, data_dir=str(tmp_path))
    async with running(jetstream_store, settings) as exporter:
        first = await scrape_when(exporter.port, caught_up, "the exporter to catch up")
        check_known(first)
        assert value(first, "ffrtmp_projection_lag_seconds") == 0
    async with running(jetstream_store, settings) as exporter:
        again = await scrape_when(exporter.port, caught_up, "the restarted exporter to catch up")
        check_known(again)
        log_figures = {k: v for k, v in first.items() if k[0].startswith(LOG_METRICS)}
        assert {k: again[k] for k in log_figures} == log_figures


LOG_METRICS = (
    "ffrtmp_jobs",
    "ffrtmp_active",
    "ffrtmp_queue",
    "ffrtmp_job_",
    "ffrtmp_schedule_",
    "ffrtmp_retries",
    "ffrtmp_nodes",
    "ffrtmp_result_",
)


async def test_new_events_move_the_figures(jetstream_store: JetStreamEventStore) -> None:
    """An event appended while the exporter runs shows in the next caught-up scrape."""
    log = Log(jetstream_store)
    async with running(jetstream_store) as exporter:
        empty = await scrape_when(exporter.port, caught_up, "an empty log to be read")
        assert value(empty, "ffrtmp_queue_length") == 0
        assert value(empty, "ffrtmp_jobs_total", state="queued") == 0
        await log.job("j1", submitted("j1"))

        def queued(samples: Samples) -> bool:
            return value(samples, "ffrtmp_queue_length") == 1

        after = await scrape_when(exporter.port, queued, "the submitted job to queue")
        assert value(after, "ffrtmp_jobs_total", state="queued") == 1


async def test_worker_gauges_follow_heartbeats_and_skip_malformed_ones(
    jetstream_store: JetStreamEventStore,
) -> None:
    """A heartbeat sets the agent's gauges; a newer one moves them; junk is counted, skipped."""
    nc, subjects = jetstream_store.nc, jetstream_store.subjects
    gpu = GpuTelemetry(
        index=0, utilization_percent=40, temperature_c=71, power_w=120, memory_used_bytes=2**30
    )
    beat = Heartbeat(
        agent="gpu-1",
        at=time.time(),
        slots=4,
        free_slots=3,
        running=(RunningJob(job="j1", attempt=1, percent=50),),
        cpu_percent=25.0,
        memory_used_bytes=8 * 2**30,
        power_w=300.0,
        gpus=(gpu,),
    )
    await nc.publish(subjects.heartbeat("gpu-1"), encode(beat))
    async with running(jetstream_store) as exporter:
        port = exporter.port

        def heard(samples: Samples) -> bool:
            return value(samples, "ffrtmp_worker_heartbeats_total", agent="gpu-1") == 1

        first = await scrape_when(port, heard, "the first heartbeat")
        assert value(first, "ffrtmp_worker_cpu_usage_ratio", agent="gpu-1") == 0.25
        assert value(first, "ffrtmp_worker_memory_bytes", agent="gpu-1") == 8 * 2**30
        assert value(first, "ffrtmp_worker_power_watts", agent="gpu-1") == 300
        assert value(first, "ffrtmp_worker_active_jobs", agent="gpu-1") == 1
        assert value(first, "ffrtmp_worker_slots", agent="gpu-1") == 4
        assert value(first, "ffrtmp_worker_has_gpu", agent="gpu-1") == 1
        assert value(first, "ffrtmp_worker_gpu_usage_ratio", agent="gpu-1", gpu="0") == 0.4
        assert value(first, "ffrtmp_worker_temperature_celsius", agent="gpu-1", gpu="0") == 71
        assert value(first, "ffrtmp_worker_gpu_power_watts", agent="gpu-1", gpu="0") == 120
        stamp = value(first, "ffrtmp_worker_last_heartbeat_timestamp_seconds", agent="gpu-1")
        assert stamp == beat.at
        assert value(first, "ffrtmp_exporter_malformed_heartbeats_total") == 0

        await nc.publish(subjects.heartbeat("bad"), b'{"type": "Heartbeat", "agent": 3}')
        hotter = GpuTelemetry(index=0, utilization_percent=90, temperature_c=88)
        later = Heartbeat(agent="gpu-1", at=beat.at + 5, slots=4, free_slots=4, gpus=(hotter,))
        await nc.publish(subjects.heartbeat("gpu-1"), encode(later))

        def moved(samples: Samples) -> bool:
            return value(samples, "ffrtmp_worker_heartbeats_total", agent="gpu-1") == 2

        second = await scrape_when(port, moved, "the second heartbeat")
        assert value(second, "ffrtmp_exporter_malformed_heartbeats_total") == 1
        assert value(second, "ffrtmp_worker_temperature_celsius", agent="gpu-1", gpu="0") == 88
        assert value(second, "ffrtmp_worker_active_jobs", agent="gpu-1") == 0
        assert value(second, "ffrtmp_worker_cpu_usage_ratio", agent="gpu-1") is None
        assert not any(labels and ("agent", "bad") in labels for _, labels in second)


async def test_anything_but_metrics_is_not_found(jetstream_store: JetStreamEventStore) -> None:
    """Only /metrics answers; other paths get a 404 that says where the metrics are."""
    async with running(jetstream_store) as exporter:
        status, body = await get(exporter.port, "/")
    assert status == "HTTP/1.1 404 Not Found"
    assert "/metrics" in body
