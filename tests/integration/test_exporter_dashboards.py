"""Every metric the dashboards and alert rules read is one a real exporter serves, lint-clean."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.health import AgentCollector
from agent.tally import AgentStats
from events.agent_events import AgentRegistered, Capabilities
from events.codec import encode
from events.jetstream import JetStreamEventStore
from events.work import GpuTelemetry, Heartbeat
from tests.deploy_files import alert_exprs, dashboard_exprs, metric_names
from tests.promtool import promtool
from tests.scrape import Log, caught_up, get, known_history, running, scrape_when, value

pytestmark = pytest.mark.anyio

SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
    "summary": ("_sum", "_count"),
}


async def exposition(store: JetStreamEventStore) -> str:
    """What a real exporter serves for the known history and a GPU agent's heartbeat."""
    log = Log(store)
    await known_history(log)
    caps = Capabilities(hostname="gpu-box", encoders=("h264_nvenc",))
    registered = AgentRegistered(agent="gpu-1", at=time.time(), capabilities=caps, slots=2)
    await log.agent(registered, agent="gpu-1")  # agents register, then beat
    gpu = GpuTelemetry(index=0, utilization_percent=50, temperature_c=60, power_w=90)
    beat = Heartbeat(agent="gpu-1", at=time.time(), slots=2, free_slots=2, gpus=(gpu,))
    await store.nc.publish(store.subjects.heartbeat("gpu-1"), encode(beat))
    async with running(store) as exporter:

        def ready(samples: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> bool:
            beats = value(samples, "ffrtmp_worker_heartbeats_total", agent="gpu-1")
            return caught_up(samples) and beats == 1

        await scrape_when(exporter.port, ready, "the exporter to read the log and the heartbeat")
        _, body = await get(exporter.port)
    return body


class Idle:
    """What an agent's collector reads, at rest: enough to list the families it serves."""

    stats = AgentStats()
    slots = free_slots = 1
    connected = True


def agent_exposition() -> str:
    """What an agent's /metrics serves (its own collector on its own registry)."""
    registry = CollectorRegistry()
    registry.register(AgentCollector(Idle()))
    return generate_latest(registry).decode()


async def test_dashboards_and_alerts_read_only_exported_metrics(
    jetstream_store: JetStreamEventStore,
) -> None:
    """Each series a panel or rule names is served; each exporter family is on a dashboard."""
    families = [
        *text_string_to_metric_families(await exposition(jetstream_store)),
        *text_string_to_metric_families(agent_exposition()),
    ]
    family_of = {
        family.name + suffix: family.name
        for family in families
        if family.name.startswith("ffrtmp_")
        for suffix in SUFFIXES[family.type]
    }
    used: dict[str, set[str]] = {}
    for source, exprs in [*dashboard_exprs().items(), ("alerts.yml", alert_exprs())]:
        for expr in exprs:
            for name in metric_names(expr):
                used.setdefault(name, set()).add(source)
    assert len(used) > 30
    unknown = {name: sorted(where) for name, where in used.items() if name not in family_of}
    assert not unknown, f"not exported: {unknown}"
    unseen = set(family_of.values()) - {family_of[name] for name in used}
    unseen -= {family.name for family in text_string_to_metric_families(agent_exposition())}
    assert not unseen, f"exported but on no dashboard: {sorted(unseen)}"


async def test_exposition_passes_promtool_check_metrics(
    jetstream_store: JetStreamEventStore,
) -> None:
    """``promtool check metrics`` (Prometheus's own naming lint) finds nothing to say."""
    body = await exposition(jetstream_store)
    assert len([line for line in body.splitlines() if line.startswith("# TYPE ffrtmp_")]) > 40
    assert promtool("check", "metrics", stdin=body).strip() == ""
    assert promtool("check", "metrics", stdin=agent_exposition()).strip() == ""
