"""``ffrtmp bench listing`` at a tiny size: both ways run, see every job, and are reported."""

from __future__ import annotations

import msgspec
import pytest

from ffrtmp.bench.listing import ListingBenchSettings, ListingReport, bench_listing

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("nats_binary")]


async def test_listing_times_the_projector_and_the_local_fold() -> None:
    """Each round checks its listing saw every job from the source it says; figures follow."""
    report = await bench_listing(ListingBenchSettings(events=400, rounds=2))
    assert (report.jobs, report.events) == (100, 400)
    assert report.projector_s > 0
    assert report.local_fold_s > 0
    assert report.speedup == pytest.approx(report.local_fold_s / report.projector_s)
    assert msgspec.json.decode(msgspec.json.encode(report), type=ListingReport) == report
