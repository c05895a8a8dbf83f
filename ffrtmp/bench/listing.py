"""``ffrtmp bench listing``: ``jobs list`` from a projector against folding the log here.

One stream of whole four-event histories (``bench replay``'s workload) is projected into a
fresh DuckDB file by ``projections.catch_up`` and served over NATS as ``ffrtmp projector run``
serves it. Then ``ffrtmp.client.joblist.list_jobs`` (what ``ffrtmp jobs list`` runs, default
filters: the newest 50 of every job) is timed both ways in interleaved rounds: asked of the
projector, and ``--local``, folding the whole log in this process.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Final

import msgspec

from events.errors import FfrtmpError
from events.subjects import Subjects
from ffrtmp.bench.fill import PREFIX, populated
from ffrtmp.bench.harness import interleaved
from ffrtmp.bench.stats import median
from ffrtmp.bench.workload import EVENTS_PER_JOB
from ffrtmp.client.conn import Address, Conn
from ffrtmp.client.joblist import JobFilter, list_jobs
from projections import Projector, catch_up
from projections.service import serve

_LIMIT: Final = 50  # ``jobs list``'s default: the newest 50 of every job


class ListingBenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How many events the log holds and how many rounds each way."""

    events: int = 1_000_000
    rounds: int = 3


class ListingReport(msgspec.Struct, frozen=True, kw_only=True):
    """Median seconds per listing each way, and how many times faster the projector is."""

    benchmark: str
    events: int
    jobs: int
    rounds: int
    projector_s: float
    local_fold_s: float
    speedup: float


async def bench_listing(settings: ListingBenchSettings) -> ListingReport:
    """Fill, project, serve; then time the listing both ways, interleaved."""
    async with populated(settings.events) as (nc, store, jobs):
        with tempfile.TemporaryDirectory(prefix="ffrtmp-bench-") as tmp:
            projector = Projector(Path(tmp) / "p.duckdb", PREFIX)
            try:
                await catch_up(projector, nc)
                service = await serve(nc, projector)
                url = nc.connected_url.geturl() if nc.connected_url else ""
                conn = Conn(store, Address(url=url, subjects=Subjects(PREFIX)))
                seconds = await interleaved(
                    settings.rounds,
                    {
                        "projector": lambda _: _timed(conn, jobs, local=False),
                        "local": lambda _: _timed(conn, jobs, local=True),
                    },
                )
                await service.stop()
            finally:
                projector.close()
    asked, folded = median(seconds["projector"]), median(seconds["local"])
    return ListingReport(
        benchmark="listing",
        events=jobs * EVENTS_PER_JOB,
        jobs=jobs,
        rounds=settings.rounds,
        projector_s=asked,
        local_fold_s=folded,
        speedup=folded / asked,
    )


async def _timed(conn: Conn, jobs: int, *, local: bool) -> float:
    """Seconds for one listing; it must have seen every job."""
    start = time.perf_counter()
    listing = await list_jobs(conn, JobFilter(limit=_LIMIT), local=local)
    elapsed = time.perf_counter() - start
    if listing.total != jobs or len(listing.rows) != min(jobs, _LIMIT):
        raise FfrtmpError(f"listing saw {listing.total} jobs of {jobs}")
    if local == listing.source.startswith("projector"):
        raise FfrtmpError(f"listing answered from {listing.source}, local={local}")
    return elapsed
