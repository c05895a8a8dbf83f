"""``ffrtmp bench append --history`` at a tiny size: appends land, assignments are fetched."""

from __future__ import annotations

import msgspec
import pytest

from ffrtmp.bench.assigned import AssignedReport, AssignedSettings, bench_assigned
from ffrtmp.bench.history import MODES, HistoryReport, HistorySettings, bench_history

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("nats_binary")]


async def test_history_appends_land_under_every_check_at_every_size() -> None:
    """The fill and two appends per job, mode and round (and warm-up) are stored; rates follow."""
    settings = HistorySettings(sizes=(0, 41), appends=30, chunk=7, rounds=2)
    report = await bench_history(settings)
    appended = (settings.rounds + 1) * len(MODES) * 2 * settings.appends
    assert report.stored == [appended, 41 + appended]
    assert {(r.history, r.mode) for r in report.rows} == {(s, m) for s in (0, 41) for m in MODES}
    assert all(len(r.rounds) == settings.rounds and r.appends_per_s > 0 for r in report.rows)
    assert set(report.flat) == set(MODES)
    assert msgspec.json.decode(msgspec.json.encode(report), type=HistoryReport) == report


async def test_assigned_fetches_each_probe_from_its_agents_consumer() -> None:
    """Every probe's assignment is fetched by its own agent's filtered consumer, at every size."""
    settings = AssignedSettings(sizes=(0, 41), consumers=5, probes=12)
    report = await bench_assigned(settings)
    assert [r.history for r in report.rows] == [0, 41]
    for row in report.rows:
        assert 0 < row.create_ms_p50 <= row.create_ms_p99
        assert 0 < row.fetch_ms_p50 <= row.fetch_ms_p99
    assert msgspec.json.decode(msgspec.json.encode(report), type=AssignedReport) == report
