"""The exporter's figures read from its own DuckDB projection, by SQL, at scrape time.

The exporter runs a ``projections.Projector`` of its own (a file under ``--data-dir``, or in
memory and rebuilt from the log on start) and follows the log with ``projections.follow``.
Every count here is a query over ``jobs``, ``job_transitions``, ``results`` and ``agents``, so
a restarted exporter serves the numbers its database holds and goes on from its checkpoint:
counters neither reset nor double. Each query reads one committed batch (DuckDB transactions),
never half of one.

Definitions match ``tests/tally.py`` (the pure fold the tests hold this against):
``entered`` counts transitions into a state; ``wait`` is ``jobs.wait_s`` (queue to first
assignment); ``duration`` is ``jobs.run_s`` of completed jobs; schedule-to-start pairs each
assignment with the start of the same attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from events.agent import DRAIN
from events.jetstream import JetStreamEventStore
from ffrtmp.exporter.figures import (
    DURATION_BUCKETS_S,
    START_BUCKETS_S,
    WAIT_BUCKETS_S,
    Histogram,
    LogFigures,
    Mean,
    ResultGroup,
    by_queue,
    empty_histogram,
)
from projections import Projector, follow

DB_NAME: Final = "exporter.duckdb"

_SCHEDULE_TO_START: Final = """
    SELECT (epoch_us(s.changed_at) - epoch_us(a.changed_at)) / 1e6 AS v
    FROM job_transitions a JOIN job_transitions s
      ON s.job = a.job AND s.attempt = a.attempt AND s.event_type = 'JobStarted'
    WHERE a.to_status = 'assigned'"""
_DRAINED: Final = (
    f"SELECT agent FROM agents WHERE quarantined AND starts_with(quarantine_reason, '{DRAIN}')"  # noqa: S608 -- our own constant
)
_RESULT_COLUMNS: Final = ("encode_fps", "energy_j", "vmaf", "psnr", "ssim", "vmaf_per_watt")
_RESULTS: Final = f"""
    SELECT scenario, encoder,
           {", ".join(f"coalesce(sum({c}), 0), count({c})" for c in _RESULT_COLUMNS)}
    FROM (SELECT scenario, encoder, encode_fps, energy_j, vmaf, psnr, ssim,
                 CASE WHEN energy_j > 0 AND wall_s > 0 THEN vmaf / (energy_j / wall_s) END
                     AS vmaf_per_watt
          FROM results)
    GROUP BY scenario, encoder ORDER BY scenario, encoder"""  # noqa: S608 -- our own columns


def database(data_dir: str | None) -> str:
    """Where the exporter's projection lives: a file under ``data_dir``, else memory."""
    if data_dir is None:
        return ":memory:"
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return str(folder / DB_NAME)


class ProjectionView:
    """``LogView`` over a ``Projector``: follows the log into DuckDB, answers by SQL."""

    def __init__(self, projector: Projector) -> None:
        """Read and feed ``projector``."""
        self.projector = projector

    @property
    def position(self) -> int:
        """The projection's checkpoint."""
        return self.projector.checkpoint()

    async def follow(self, store: JetStreamEventStore) -> None:
        """Apply the log from the checkpoint on; never returns."""
        await follow(self.projector, store.nc)

    def close(self) -> None:
        """Close the database."""
        self.projector.close()

    def figures(self) -> LogFigures:
        """The figures as of the checkpoint, every one from the same committed batch."""
        with self.projector.snapshot() as rows:
            return _figures(_Reading(rows))


def _figures(read: _Reading) -> LogFigures:
    ((position,),) = read.rows("SELECT coalesce(max(seq), 0) FROM _checkpoint")
    entered = read.counts("SELECT to_status, count(*) FROM job_transitions GROUP BY 1")
    queued = read.rows(
        "SELECT queue, priority, count(*) FROM jobs WHERE status = 'queued' GROUP BY 1, 2"
    )
    nodes = read.rows(
        "SELECT status, count(*), count(*) FILTER (WHERE quarantined) FROM agents GROUP BY 1"
    )
    departed = read.rows("SELECT agent FROM agents WHERE status = 'offline'")
    drained = read.rows(_DRAINED)
    present = read.rows("SELECT agent FROM agents WHERE status <> 'offline'")
    return LogFigures(
        position=position,
        entered=entered,
        by_state=read.counts("SELECT status, count(*) FROM jobs WHERE status <> 'new' GROUP BY 1"),
        queued_by_priority=_sum_by(queued, 1),
        queued_by_queue=_sum_by(queued, 0),
        assignments=entered.get("assigned", 0),
        rejections=entered.get("rejected", 0),
        failed_by_reason=read.counts(
            "SELECT reason, count(*) FROM job_transitions WHERE to_status = 'failed' GROUP BY 1"
        ),
        retries=entered.get("retrying", 0),
        duration=read.by_queue(
            "SELECT queue, run_s AS v FROM jobs WHERE status = 'completed'", DURATION_BUCKETS_S
        ),
        wait=read.by_queue("SELECT queue, wait_s AS v FROM jobs", WAIT_BUCKETS_S),
        schedule_to_start=read.histogram(_SCHEDULE_TO_START, START_BUCKETS_S),
        nodes_by_status={str(status): int(count) for status, count, _ in nodes},
        nodes_quarantined=sum(int(quarantined) for _, _, quarantined in nodes),
        departed=frozenset(str(agent) for (agent,) in departed),
        drained=frozenset(str(agent) for (agent,) in drained),
        present=frozenset(str(agent) for (agent,) in present),
        results=tuple(_group(row) for row in read.rows(_RESULTS)),
    )


class _Reading:
    """Our own queries, all in one read transaction (``Projector.snapshot``)."""

    def __init__(self, read: Callable[[str], list[list[Any]]]) -> None:
        self._read = read

    def rows(self, sql: str) -> list[list[Any]]:
        """The rows of one of our own queries."""
        return self._read(sql)

    def counts(self, sql: str) -> dict[str, int]:
        """``key, count`` rows as a dict; a NULL key is left out."""
        return {str(key): int(count) for key, count in self.rows(sql) if key is not None}

    def histogram(self, values_sql: str, bounds: Sequence[float]) -> Histogram:
        """Cumulative buckets of the ``v`` column of ``values_sql``."""
        whole = f"SELECT '' AS queue, v FROM ({values_sql})"  # noqa: S608 -- our own queries
        rows = self.rows(_histogram_sql(whole, bounds))
        return _histogram(rows[0][1:], bounds) if rows else empty_histogram(bounds)

    def by_queue(self, values_sql: str, bounds: Sequence[float]) -> dict[str, Histogram]:
        """Cumulative buckets of the ``v`` column of ``values_sql`` per its ``queue`` column."""
        found = {
            str(row[0]): _histogram(row[1:], bounds)
            for row in self.rows(_histogram_sql(values_sql, bounds))
        }
        return by_queue(found, bounds)


def _histogram_sql(values_sql: str, bounds: Sequence[float]) -> str:
    cells = ", ".join(f"count(*) FILTER (WHERE v <= {bound!r})" for bound in bounds)
    return (
        f"SELECT queue, {cells}, count(*), coalesce(sum(v), 0)"  # noqa: S608 -- our own queries
        f" FROM ({values_sql}) WHERE v IS NOT NULL GROUP BY queue"
    )


def _histogram(cells: Sequence[Any], bounds: Sequence[float]) -> Histogram:
    *counts, total, summed = cells
    buckets = (*zip(bounds, counts, strict=True), (float("inf"), total))
    return Histogram(buckets=tuple((b, int(c)) for b, c in buckets), sum=float(summed))


def _sum_by(rows: list[list[Any]], column: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[str(row[column])] = out.get(str(row[column]), 0) + int(row[-1])
    return out


def _group(row: list[Any]) -> ResultGroup:
    scenario, encoder, *cells = row
    means = [Mean(sum=float(cells[i]), count=int(cells[i + 1])) for i in range(0, len(cells), 2)]
    fields = dict(zip(_RESULT_COLUMNS, means, strict=True))
    return ResultGroup(
        scenario=str(scenario),
        encoder=str(encoder),
        encode_fps=fields["encode_fps"],
        energy_j=fields["energy_j"],
        vmaf=fields["vmaf"],
        psnr=fields["psnr"],
        ssim=fields["ssim"],
        vmaf_per_watt=fields["vmaf_per_watt"],
    )
