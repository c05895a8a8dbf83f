"""The agent's /health, /ready and /metrics over real HTTP, beside a real agent service."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from agent.attempt import AttemptSettings
from agent.health import HealthServer, disk_check, ffmpeg_check, nats_check
from agent.scripted import Behaviour, ScriptedEngine
from agent.service import AgentService, AgentSettings
from events.enums import JobStatus
from events.jetstream import JetStreamEventStore
from ffrtmp.natsd import NatsServer
from tests.farm import CPU, Farm, scheduler, wait_until
from tests.scrape import check_runtime

pytestmark = pytest.mark.anyio


def get(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` on the local port; the status and the body, errors included."""
    url = f"http://127.0.0.1:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def fetch(port: int, path: str) -> tuple[int, str]:
    """``get`` off the event loop."""
    return await asyncio.to_thread(get, port, path)


@pytest.fixture
async def service(
    nats_server: NatsServer, jetstream_store: JetStreamEventStore
) -> AsyncIterator[AgentService]:
    """An agent on a connection of its own (so a test may close it), slots 2."""
    nc = await nats.connect(nats_server.url)
    settings = AgentSettings(slots=2, heartbeat_s=0.1, attempt=AttemptSettings(poll_s=0.02))
    engine = ScriptedEngine(Behaviour(run_s=0.02, milestones=()))
    agent = AgentService(nc, jetstream_store, jetstream_store.subjects, "a1", CPU, engine, settings)
    await agent.start()
    yield agent
    await agent.stop(deregister=False)
    if not nc.is_closed:
        await nc.close()


async def test_health_and_ready_answer_and_say_why_not(
    service: AgentService, tmp_path: Path
) -> None:
    """/health is 200 while the process runs; /ready is 503 naming the first failing check."""
    ffmpeg = tmp_path / "ffmpeg"
    ffmpeg.write_bytes(b"#!/bin/sh\n")
    ffmpeg.chmod(0o755)
    health = HealthServer(
        service, [ffmpeg_check(ffmpeg), disk_check(tmp_path), nats_check(service)], port=0
    )
    health.start()
    try:
        assert await fetch(health.port, "/health") == (200, "ok\n")
        assert await fetch(health.port, "/ready") == (200, "ready\n")
        ffmpeg.chmod(0o644)
        status, body = await fetch(health.port, "/ready")
        assert (status, body) == (
            503,
            f"not ready: FFmpeg at {ffmpeg} is missing or not executable\n",
        )
        ffmpeg.chmod(0o755)
        await service._nc.close()
        status, body = await fetch(health.port, "/ready")
        assert (status, body) == (503, "not ready: NATS is not connected\n")
        assert (await fetch(health.port, "/health"))[0] == 200
        assert (await fetch(health.port, "/nope"))[0] == 404
    finally:
        health.stop()


async def test_ready_is_refused_when_the_output_disk_is_nearly_full(
    service: AgentService, tmp_path: Path
) -> None:
    """Less free space than the minimum makes the agent not ready, naming the directory."""
    health = HealthServer(service, [disk_check(tmp_path, min_free_bytes=1 << 62)], port=0)
    health.start()
    try:
        status, body = await fetch(health.port, "/ready")
    finally:
        health.stop()
    assert status == 503
    assert body.startswith("not ready: only ")
    assert f"MiB free on {tmp_path}, below the" in body


async def test_metrics_count_what_the_agent_did(service: AgentService, farm: Farm) -> None:
    """After a job, /metrics shows it completed, heartbeats sent and both slots free."""
    health = HealthServer(service, [], port=0)
    health.start()
    try:
        async with scheduler(farm.store):
            await farm.submit("j")
            await farm.wait_status("j", JobStatus.COMPLETED)

        async def counted() -> bool:
            return service.stats.completed == 1 and service.free_slots == 2

        await wait_until(counted, "the agent to count the job")
        status, body = await fetch(health.port, "/metrics")
    finally:
        health.stop()
    assert status == 200
    lines = set(body.splitlines())
    assert 'ffrtmp_agent_jobs_total{outcome="completed"} 1.0' in lines
    assert 'ffrtmp_agent_jobs_total{outcome="failed"} 0.0' in lines
    assert "ffrtmp_agent_executions_total 1.0" in lines
    assert "ffrtmp_agent_malformed_messages_total 0.0" in lines
    assert "ffrtmp_agent_free_slots 2.0" in lines
    assert "ffrtmp_agent_running_jobs 0.0" in lines
    beats = next(line for line in lines if line.startswith("ffrtmp_agent_heartbeats_total "))
    assert float(beats.split()[1]) >= 1
    check_runtime(body, "agent")
