"""The exporter against a real nats-server: a known history in, exact metrics out over HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from events.agent import DRAIN
from events.agent_events import (
    AgentDeregistered,
    AgentQuarantined,
    AgentRegistered,
    Capabilities,
)
from events.codec import encode
from events.jetstream import JetStreamEventStore
from events.work import GpuTelemetry, Heartbeat, RunningJob
from ffrtmp.exporter.service import ExporterSettings
from tests.scrape import (
    Log,
    Samples,
    caught_up,
    check_runtime,
    get,
    known_history,
    running,
    scrape_when,
    submitted,
    value,
)

pytestmark = pytest.mark.anyio


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
    default, live, batch = {"queue": "default"}, {"queue": "live"}, {"queue": "batch"}
    assert value(samples, "ffrtmp_job_duration_seconds_count", **default) == 1
    assert value(samples, "ffrtmp_job_duration_seconds_sum", **default) == 10.0
    assert value(samples, "ffrtmp_job_duration_seconds_bucket", le="5.0", **default) == 0
    assert value(samples, "ffrtmp_job_duration_seconds_bucket", le="10.0", **default) == 1
    assert value(samples, "ffrtmp_job_duration_seconds_count", **live) == 0
    assert value(samples, "ffrtmp_job_duration_seconds_count", **batch) == 0
    assert value(samples, "ffrtmp_job_wait_time_seconds_count", **default) == 2  # job1, job6
    assert value(samples, "ffrtmp_job_wait_time_seconds_sum", **default) == 2 + 3
    assert value(samples, "ffrtmp_job_wait_time_seconds_count", **live) == 1  # job2
    assert value(samples, "ffrtmp_job_wait_time_seconds_bucket", le="1.0", **live) == 1
    assert value(samples, "ffrtmp_job_wait_time_seconds_bucket", le="0.5", **live) == 0
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
        _, body = await get(exporter.port)
        check_runtime(body, "exporter")
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
    caps = Capabilities(hostname="h", encoders=("libx264",))
    registered = AgentRegistered(agent="gpu-1", at=time.time(), capabilities=caps, slots=4)
    await Log(jetstream_store).agent(registered, agent="gpu-1")  # agents register, then beat
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


async def test_departed_agents_lose_their_gauges_and_silent_ones_their_load(
    jetstream_store: JetStreamEventStore,
) -> None:
    """Deregistered, drained and silent, or never registered: no series; silent: no load."""
    nc, subjects = jetstream_store.nc, jetstream_store.subjects
    caps = Capabilities(hostname="h", encoders=("libx264",))
    log = Log(jetstream_store)
    now = time.time()
    ghost = Heartbeat(agent="ghost", at=now, slots=64, free_slots=64, cpu_percent=1.0)
    await nc.publish(subjects.heartbeat("ghost"), encode(ghost))  # forged: never registered
    old = now - 1200  # silent past the tests' 600 s staleness, within the hour of the board
    beats = {"gone": now, "silent": old, "drained": old, "draining": now, "here": now}
    for agent, at in beats.items():  # "here" last: once its beat is counted, all are
        registered = AgentRegistered(agent=agent, at=at, capabilities=caps, slots=1)
        await log.agent(registered, agent=agent)
        beat = Heartbeat(agent=agent, at=at, slots=1, free_slots=1, cpu_percent=100.0)
        await nc.publish(subjects.heartbeat(agent), encode(beat))
    await log.agent(AgentDeregistered(agent="gone", at=now + 1), agent="gone")
    for agent in ("drained", "draining"):
        drain = AgentQuarantined(agent=agent, at=now, reason=f"{DRAIN}: maintenance")
        await log.agent(drain, agent=agent)
    async with running(jetstream_store) as exporter:

        def heard(samples: Samples) -> bool:
            here = value(samples, "ffrtmp_worker_heartbeats_total", agent="here")
            return caught_up(samples) and here == 1

        samples = await scrape_when(exporter.port, heard, "the heartbeats and the log")
    for agent in ("gone", "drained", "ghost"):
        assert [name for name, labels in samples if ("agent", agent) in labels] == [], agent
    assert value(samples, "ffrtmp_worker_cpu_usage_ratio", agent="here") == 1.0
    assert value(samples, "ffrtmp_worker_cpu_usage_ratio", agent="draining") == 1.0
    assert value(samples, "ffrtmp_worker_cpu_usage_ratio", agent="silent") is None
    stamp = value(samples, "ffrtmp_worker_last_heartbeat_timestamp_seconds", agent="silent")
    assert stamp == old
    assert value(samples, "ffrtmp_nodes_by_status", status="offline") == 1
