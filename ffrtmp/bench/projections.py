"""``ffrtmp bench projections``: the projector's rebuild against a raw read, and its lag.

Rebuild: one stream of realistic histories (``bench replay``'s, a million events by default) is
folded from scratch into a fresh DuckDB file by ``projections.catch_up`` (read, decode, fold,
Arrow, one transaction per batch with its checkpoint), against nats-py's ordered consumer
counting the same messages, in interleaved rounds on one server. The ratio is ours over raw.

Lag: the last round's database (the whole stream in it) then follows the log while histories
are appended at a steady rate; each event's lag runs from just before its append was sent to
the commit of the batch that holds it, from when on a query sees it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient

from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from ffrtmp.bench.fill import PREFIX, ordered_read, populated
from ffrtmp.bench.harness import interleaved
from ffrtmp.bench.stats import median, rate, ratio
from ffrtmp.bench.workload import EVENTS_PER_JOB, T0, job_id, step
from projections import Projector, catch_up, follow

RATIO_TARGET: Final = 0.5
LAG_TARGET_S: Final = 1.0
_TICK_S: Final = 0.01
_WARMUP_S: Final = 2.0


class ProjectionsBenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How big the stream is, how many rounds, and the steady rate the lag is measured at."""

    events: int = 1_000_000
    rounds: int = 3
    window: int = 1_000
    rate: float = 2_000.0
    seconds: float = 20.0


class ProjectionsReport(msgspec.Struct, frozen=True, kw_only=True):
    """Medians of the rebuild rounds, their ratio, and the lag percentiles at a steady rate."""

    benchmark: str
    events: int
    rounds: int
    projector_events_per_s: float
    raw_events_per_s: float
    ratio: float
    ratio_target: float
    projector_rounds: list[float]
    raw_rounds: list[float]
    lag_rate: float
    lag_events: int
    lag_p50_s: float
    lag_p99_s: float
    lag_max_s: float
    lag_target_s: float


async def bench_projections(settings: ProjectionsBenchSettings) -> ProjectionsReport:
    """Fill a stream, rebuild it both ways in rounds, then measure lag; summarise."""
    with tempfile.TemporaryDirectory(prefix="ffrtmp-bench-db-") as tmp:
        async with populated(settings.events, settings.window) as (nc, store, jobs):
            count = jobs * EVENTS_PER_JOB
            rates = await interleaved(
                settings.rounds,
                {
                    "ours": lambda i: _rebuild(nc, Path(tmp) / f"round{i}.duckdb", count),
                    "raw": lambda _: ordered_read(nc, store.subjects, count),
                },
            )
            last_db = Path(tmp) / f"round{settings.rounds - 1}.duckdb"
            lags = await _lag(store, last_db, settings, first_job=jobs)
    return _report(settings, count, rates, lags)


async def _rebuild(nc: NatsClient, db: Path, count: int) -> float:
    """A fresh projection of the whole stream in a DuckDB file; events per second."""
    projector = Projector(db, PREFIX)
    try:
        start = time.perf_counter()
        applied = await catch_up(projector, nc)
        elapsed = time.perf_counter() - start
        if applied != count or projector.checkpoint() != count:
            raise FfrtmpError(f"the rebuild applied {applied} of {count} events")
    finally:
        projector.close()
    return rate(count, elapsed)


class _LagMeter:
    """When each appended event was sent, and how long until a commit made it queryable."""

    def __init__(self) -> None:
        self.sent: dict[int, float] = {}
        self.lags: list[float] = []
        self.measured_from = float("inf")
        self.appending = True
        self.drained = asyncio.Event()
        self._checkpoints: list[int] = []  # of each commit, rising
        self._commits: list[float] = []  # when each commit landed

    def record(self, seq: int, at: float) -> None:
        """``seq`` was appended by a call that started at ``at`` (it may have landed already)."""
        found = bisect.bisect_left(self._checkpoints, seq)
        if found < len(self._checkpoints):
            self._lag(at, self._commits[found])
        else:
            self.sent[seq] = at

    def landed(self, checkpoint: int, _: int) -> None:
        """A batch committed up to ``checkpoint``: everything sent up to it is queryable now."""
        now = time.perf_counter()
        self._checkpoints.append(checkpoint)
        self._commits.append(now)
        for seq in [seq for seq in self.sent if seq <= checkpoint]:
            self._lag(self.sent.pop(seq), now)
        if not self.appending and not self.sent:
            self.drained.set()

    def _lag(self, at: float, landed: float) -> None:
        if at >= self.measured_from:
            self.lags.append(landed - at)


async def _lag(
    store: JetStreamEventStore, db: Path, settings: ProjectionsBenchSettings, first_job: int
) -> list[float]:
    """Append histories at ``settings.rate`` while a projector follows; each event's lag."""
    projector = Projector(db, PREFIX)
    meter = _LagMeter()
    following = asyncio.create_task(follow(projector, store.nc, on_batch=meter.landed))
    try:
        await _steady(store, settings, first_job, meter)
        meter.appending = False
        if meter.sent:
            async with asyncio.timeout(30):
                await meter.drained.wait()
    except TimeoutError:
        raise FfrtmpError(f"{len(meter.sent)} appended events never became queryable") from None
    finally:
        following.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await following
        projector.close()
    return meter.lags


async def _steady(
    store: JetStreamEventStore,
    settings: ProjectionsBenchSettings,
    first_job: int,
    meter: _LagMeter,
) -> None:
    """Every tick, the next event of each job of one group, so histories stay whole."""
    per_tick = max(1, round(settings.rate * _TICK_S))
    ticks = int(settings.seconds / _TICK_S)
    start = time.perf_counter()
    meter.measured_from = start + _WARMUP_S
    last: dict[str, int] = {}
    for tick in range(ticks):
        await asyncio.sleep(max(0.0, start + tick * _TICK_S - time.perf_counter()))
        group, index = divmod(tick, EVENTS_PER_JOB)
        names = [job_id(PREFIX, first_job + group * per_tick + i) for i in range(per_tick)]
        items = [step(store.subjects, job, index, T0, last.get(job, 0)) for job in names]
        at = time.perf_counter()
        for job, result in zip(names, await store.append_many(items), strict=True):
            if isinstance(result, Exception):
                raise result
            last[job] = result
            meter.record(result, at)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _report(
    settings: ProjectionsBenchSettings,
    count: int,
    rates: dict[str, list[float]],
    lags: list[float],
) -> ProjectionsReport:
    ours, raw = median(rates["ours"]), median(rates["raw"])
    return ProjectionsReport(
        benchmark="projections",
        events=count,
        rounds=settings.rounds,
        projector_events_per_s=round(ours, 1),
        raw_events_per_s=round(raw, 1),
        ratio=round(ratio(ours, raw), 3),
        ratio_target=RATIO_TARGET,
        projector_rounds=[round(r, 1) for r in rates["ours"]],
        raw_rounds=[round(r, 1) for r in rates["raw"]],
        lag_rate=settings.rate,
        lag_events=len(lags),
        lag_p50_s=round(_percentile(lags, 0.5), 4),
        lag_p99_s=round(_percentile(lags, 0.99), 4),
        lag_max_s=round(max(lags), 4),
        lag_target_s=LAG_TARGET_S,
    )
