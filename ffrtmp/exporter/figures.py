"""What the exporter knows at one scrape, as plain data: the log's figures and its own health.

The log's figures (``LogFigures``) are read from the exporter's projection at scrape time, so
every counter among them is a count of facts in the log: a restarted exporter reads the same
numbers, never zeros. ``Health`` is the exporter's own state. Both are pure data, rendered into
metric families by ``ffrtmp.exporter.collector``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import msgspec

from events.enums import Queue

DURATION_BUCKETS_S: Final = (
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0
)  # fmt: skip
"""Run time of a completed job: a 480p clip's fraction of a second to an hour-long encode."""
WAIT_BUCKETS_S: Final = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0
)  # fmt: skip
"""Wait in the queue before the first assignment: immediate to an hour behind a backlog."""
START_BUCKETS_S: Final = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Assignment to start: the dispatch's trip and FFmpeg's launch."""


class Histogram(msgspec.Struct, frozen=True, kw_only=True):
    """Cumulative bucket counts (upper bound, count), ending with +Inf, and the sum."""

    buckets: tuple[tuple[float, int], ...]
    sum: float


def empty_histogram(bounds: Sequence[float]) -> Histogram:
    """No observations yet."""
    return Histogram(buckets=tuple((bound, 0) for bound in (*bounds, float("inf"))), sum=0.0)


def by_queue(found: Mapping[str, Histogram], bounds: Sequence[float]) -> dict[str, Histogram]:
    """One histogram per queue, every queue present (empty where nothing was observed)."""
    every = {queue.value: empty_histogram(bounds) for queue in Queue}
    return every | dict(found)


class Mean(msgspec.Struct, frozen=True, kw_only=True):
    """A sum and a count: a Prometheus summary without quantiles (mean = sum / count)."""

    sum: float = 0.0
    count: int = 0


class ResultGroup(msgspec.Struct, frozen=True, kw_only=True):
    """Results of completed jobs of one scenario on one encoder."""

    scenario: str
    encoder: str
    encode_fps: Mean = Mean()
    energy_j: Mean = Mean()
    vmaf: Mean = Mean()
    psnr: Mean = Mean()
    ssim: Mean = Mean()
    vmaf_per_watt: Mean = Mean()


class LogFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the exporter reports that the log decides, as of ``position``."""

    position: int = 0  # the last stream sequence these figures include
    entered: dict[str, int] = {}  # state -> times a job entered it
    by_state: dict[str, int] = {}  # state -> jobs in it now
    queued_by_priority: dict[str, int] = {}
    queued_by_queue: dict[str, int] = {}
    assignments: int = 0
    rejections: int = 0
    failed_by_reason: dict[str, int] = {}
    retries: int = 0
    duration: dict[str, Histogram] = {}  # queue -> run time of its completed jobs
    wait: dict[str, Histogram] = {}  # queue -> wait before its jobs' first assignment
    schedule_to_start: Histogram = empty_histogram(START_BUCKETS_S)
    nodes_by_status: dict[str, int] = {}
    nodes_quarantined: int = 0
    departed: frozenset[str] = frozenset()  # agents deregistered (stopped or removed): no gauges
    drained: frozenset[str] = frozenset()  # agents an operator is taking out: gauges while heard
    present: frozenset[str] = frozenset()
    """Agents registered and not deregistered: only they have worker gauges (a heartbeat from an
    agent the log does not know, forged or early, shows nothing)."""
    results: tuple[ResultGroup, ...] = ()


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """The exporter's own state at a scrape."""

    lag_events: int  # events on the log the projection has not applied
    lag_s: float  # how long the projection has been behind (0 when caught up)
    uptime_s: float
    malformed_heartbeats: int
    scheduler_uptime_s: float | None = None  # the leader's time holding the lease; None: none
    dead_letters: dict[tuple[str, str], int] = {}  # stored dead letters by (source, kind)
