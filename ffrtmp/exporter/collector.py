"""The exporter's Prometheus collector: figures in, metric families out, at scrape time.

A custom collector on a private registry (as dramatiq does), not module-level metric objects:
each scrape asks for the log's figures, the worker board and the exporter's health and renders
them, so nothing here holds a count of its own that a restart could reset. Names follow
Prometheus conventions (``promtool check metrics``): base units in the name, ``_total`` only on
counters, help text on each, fixed low-cardinality labels (an agent or GPU index, never a job).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector

from events.enums import AgentStatus, FailureReason, JobStatus, Priority, Queue
from ffrtmp.exporter.figures import (
    DURATION_BUCKETS_S,
    WAIT_BUCKETS_S,
    Health,
    Histogram,
    LogFigures,
    Mean,
    ResultGroup,
    by_queue,
)
from ffrtmp.exporter.workers import Worker

NS: Final = "ffrtmp"
_STATES: Final = tuple(status.value for status in JobStatus if status is not JobStatus.NEW)
_ACTIVE: Final = (JobStatus.ASSIGNED.value, JobStatus.RUNNING.value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NS}_{name}", doc, value=value)


def _labelled(
    kind: type[GaugeMetricFamily | CounterMetricFamily],
    name: str,
    doc: str,
    label: str,
    values: Mapping[str, int],
    keys: Sequence[str] = (),
) -> Metric:
    """One family with a sample per key; ``keys`` are always present (zero when absent)."""
    family = kind(f"{NS}_{name}", doc, labels=[label])
    for key in sorted({*keys, *values}):
        family.add_metric([key], values.get(key, 0))
    return family


def _histogram(name: str, doc: str, figures: Histogram) -> HistogramMetricFamily:
    buckets = [(_le(bound), count) for bound, count in figures.buckets]
    return HistogramMetricFamily(f"{NS}_{name}", doc, buckets=buckets, sum_value=figures.sum)


def _by_queue(name: str, doc: str, figures: Mapping[str, Histogram]) -> HistogramMetricFamily:
    family = HistogramMetricFamily(f"{NS}_{name}", doc, labels=["queue"])
    for queue in sorted(figures):
        histogram = figures[queue]
        buckets = [(_le(bound), count) for bound, count in histogram.buckets]
        family.add_metric([queue], buckets, histogram.sum)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def log_families(figures: LogFigures) -> Iterator[Metric]:
    """The families the log decides: jobs, queues, scheduling, failures, nodes, results."""
    yield from _job_families(figures)
    yield from _scheduling_families(figures)
    yield from _node_families(figures)
    yield from result_families(figures.results)


def _job_families(figures: LogFigures) -> Iterator[Metric]:
    by_state = figures.by_state
    yield _labelled(
        CounterMetricFamily,
        "jobs",
        "Times a job entered each state, counted from the log (a job re-entering counts again).",
        "state",
        figures.entered,
        _STATES,
    )
    yield _labelled(
        GaugeMetricFamily, "jobs_by_state", "Jobs in each state now.", "state", by_state, _STATES
    )
    yield _gauge(
        "active_jobs",
        "Jobs an agent holds now (assigned or running).",
        sum(by_state.get(state, 0) for state in _ACTIVE),
    )
    yield _gauge(
        "queue_length", "Jobs queued for placement now.", by_state.get(JobStatus.QUEUED.value, 0)
    )
    yield _labelled(
        GaugeMetricFamily,
        "queue_by_priority",
        "Queued jobs by priority.",
        "priority",
        figures.queued_by_priority,
        [p.value for p in Priority],
    )
    yield _labelled(
        GaugeMetricFamily,
        "queue_by_type",
        "Queued jobs by queue type (live, default, batch).",
        "type",
        figures.queued_by_queue,
        [q.value for q in Queue],
    )
    yield _by_queue(
        "job_duration_seconds",
        "Run time of completed jobs, from the start of the attempt that completed to its end.",
        by_queue(figures.duration, DURATION_BUCKETS_S),
    )
    yield _by_queue(
        "job_wait_time_seconds",
        "Time a job waited in the queue before its first assignment (approval time excluded).",
        by_queue(figures.wait, WAIT_BUCKETS_S),
    )


def _scheduling_families(figures: LogFigures) -> Iterator[Metric]:
    yield _labelled(
        CounterMetricFamily,
        "schedule_attempts",
        "Scheduling decisions by result: assigned to an agent, or rejected (no agent could).",
        "result",
        {"assigned": figures.assignments, "rejected": figures.rejections},
    )
    yield CounterMetricFamily(
        f"{NS}_jobs_rejected", "Jobs rejected: no registered agent could run them.",
        value=figures.rejections,
    )  # fmt: skip
    yield _labelled(
        CounterMetricFamily,
        "jobs_failed",
        "Times a job failed for good, by reason (a job an operator retries may fail again).",
        "reason",
        figures.failed_by_reason,
        [r.value for r in FailureReason],
    )
    yield CounterMetricFamily(
        f"{NS}_retries", "Attempts that failed or timed out and were retried.",
        value=figures.retries,
    )  # fmt: skip
    yield _histogram(
        "schedule_to_start_seconds",
        "Time from an attempt's assignment to its start on the agent.",
        figures.schedule_to_start,
    )


def _node_families(figures: LogFigures) -> Iterator[Metric]:
    yield _gauge("nodes", "Agents that ever registered.", sum(figures.nodes_by_status.values()))
    yield _labelled(
        GaugeMetricFamily,
        "nodes_by_status",
        "Agents by status as the log says (online, lost, offline).",
        "status",
        figures.nodes_by_status,
        [s.value for s in AgentStatus if s is not AgentStatus.UNKNOWN],
    )
    yield _gauge(
        "nodes_quarantined",
        "Agents quarantined: no new placements until an operator clears them.",
        figures.nodes_quarantined,
    )


_RESULTS: Final[tuple[tuple[str, str, Callable[[ResultGroup], Mean]], ...]] = (
    ("encode_frames_per_second", "Encode speed in frames per second.", lambda g: g.encode_fps),
    ("energy_joules", "Energy one job used, where the agent measured it.", lambda g: g.energy_j),
    ("vmaf_score", "VMAF of the output against the source (0-100).", lambda g: g.vmaf),
    ("psnr_decibels", "PSNR of the output against the source.", lambda g: g.psnr),
    ("ssim_score", "SSIM of the output against the source (0-1).", lambda g: g.ssim),
    ("vmaf_per_watt", "Quality per watt: VMAF over average power.", lambda g: g.vmaf_per_watt),
)


def result_families(groups: Sequence[ResultGroup]) -> Iterator[Metric]:
    """Per scenario and encoder: sum and count of each result, over completed jobs."""
    for name, doc, pick in _RESULTS:
        family = SummaryMetricFamily(
            f"{NS}_result_{name}",
            f"{doc} Over completed jobs, per scenario and encoder.",
            labels=["scenario", "encoder"],
        )
        for group in groups:
            mean = pick(group)
            if mean.count:
                family.add_metric([group.scenario, group.encoder], mean.count, mean.sum)
        yield family


# --- workers ----------------------------------------------------------------------------------

_WORKER_GAUGES: Final[tuple[tuple[str, str, Callable[[Worker], float | None]], ...]] = (
    ("slots", "Concurrent jobs the agent offers.", lambda w: w.last.slots),
    ("has_gpu", "1 when the agent reports an NVIDIA GPU.", lambda w: float(bool(w.last.gpus))),
    ("last_heartbeat_timestamp_seconds", "When the agent last heartbeat.", lambda w: w.last.at),
)
_LOAD_GAUGES: Final[tuple[tuple[str, str, Callable[[Worker], float | None]], ...]] = (
    (
        "cpu_usage_ratio",
        "CPU busy, 0 to 1.",
        lambda w: None if w.last.cpu_percent is None else w.last.cpu_percent / 100,
    ),
    ("memory_bytes", "Memory in use.", lambda w: w.last.memory_used_bytes),
    ("power_watts", "Power drawn, where the agent measures it.", lambda w: w.last.power_w),
    ("active_jobs", "Attempts the agent is running.", lambda w: len(w.last.running)),
)
_GPU_GAUGES: Final = (
    ("gpu_usage_ratio", "GPU busy, 0 to 1.", "utilization_percent", 0.01),
    ("temperature_celsius", "GPU temperature.", "temperature_c", 1.0),
    ("gpu_memory_bytes", "GPU memory in use.", "memory_used_bytes", 1.0),
    ("gpu_power_watts", "GPU power draw.", "power_w", 1.0),
    ("gpu_encoder_sessions", "NVENC sessions open on the GPU.", "encoder_sessions", 1.0),
)


def worker_families(workers: Sequence[Worker]) -> Iterator[Metric]:
    """Per-agent gauges from each agent's latest heartbeat, and per-GPU ones.

    Load (CPU, memory, power, jobs, GPUs) is shown only from a fresh heartbeat: a silent
    agent's last reading is not its load, and a flat line would say it is.
    """
    fresh = [worker for worker in workers if worker.fresh]
    for gauges, shown in ((_WORKER_GAUGES, workers), (_LOAD_GAUGES, fresh)):
        for name, doc, pick in gauges:
            family = GaugeMetricFamily(
                f"{NS}_worker_{name}", f"{doc} Latest heartbeat.", labels=["agent"]
            )
            for worker in shown:
                value = pick(worker)
                if value is not None:
                    family.add_metric([worker.last.agent], value)
            yield family
    beats = CounterMetricFamily(
        f"{NS}_worker_heartbeats", "Heartbeats seen from each agent since the exporter started.",
        labels=["agent"],
    )  # fmt: skip
    for worker in workers:
        beats.add_metric([worker.last.agent], worker.heartbeats)
    yield beats
    yield from _gpu_families(fresh)


def _gpu_families(workers: Sequence[Worker]) -> Iterator[Metric]:
    for name, doc, attribute, scale in _GPU_GAUGES:
        family = GaugeMetricFamily(
            f"{NS}_worker_{name}", f"{doc} Latest heartbeat.", labels=["agent", "gpu"]
        )
        for worker in workers:
            for gpu in worker.last.gpus:
                value = getattr(gpu, attribute)
                if value is not None:
                    family.add_metric([worker.last.agent, str(gpu.index)], value * scale)
        yield family


# --- health -----------------------------------------------------------------------------------


def health_families(health: Health) -> Iterator[Metric]:
    """The exporter's own state: how far its projection is behind, how long it has run."""
    yield _gauge(
        "projection_lag_events", "Events on the log the projection has not applied.",
        health.lag_events,
    )  # fmt: skip
    yield _gauge(
        "projection_lag_seconds", "How long the projection has been behind the log (0: caught up).",
        health.lag_s,
    )  # fmt: skip
    yield _gauge("exporter_uptime_seconds", "Time since the exporter started.", health.uptime_s)
    yield CounterMetricFamily(
        f"{NS}_exporter_malformed_heartbeats", "Heartbeats that did not decode, skipped.",
        value=health.malformed_heartbeats,
    )  # fmt: skip
    uptime = GaugeMetricFamily(
        f"{NS}_scheduler_uptime_seconds",
        "Time the leading scheduler has held the lease; absent while no scheduler leads.",
    )
    if health.scheduler_uptime_s is not None:
        uptime.add_metric([], health.scheduler_uptime_s)
    yield uptime
    yield _gauge(
        "scheduler_up", "1 while a scheduler holds the leader lease.",
        float(health.scheduler_uptime_s is not None),
    )  # fmt: skip
    letters = GaugeMetricFamily(
        f"{NS}_dead_letters",
        "Messages set aside and stored in the dead-letter stream now, by source and kind.",
        labels=["source", "kind"],
    )
    for (source, kind), count in sorted(health.dead_letters.items()):
        letters.add_metric([source, kind], count)
    yield letters


class FfrtmpCollector(Collector):
    """Renders the three sources at each scrape; each is a callable so nothing goes stale."""

    def __init__(
        self,
        figures: Callable[[], LogFigures],
        workers: Callable[[], Sequence[Worker]],
        health: Callable[[], Health],
    ) -> None:
        """Read from these at each ``collect``."""
        self._figures = figures
        self._workers = workers
        self._health = health

    def collect(self) -> Iterable[Metric]:
        """Every family, in a fixed order.

        Only agents the log has registered have gauges (a forged heartbeat shows no ghost). An
        agent the log says deregistered has none, nor has a drained one once silent: an
        operator took it out, so its silence is no fault to alert on.
        """
        figures = self._figures()
        yield from log_families(figures)
        present = [
            w
            for w in self._workers()
            if w.last.agent in figures.present
            and w.last.agent not in figures.departed
            and (w.fresh or w.last.agent not in figures.drained)
        ]
        yield from worker_families(present)
        yield from health_families(self._health())
