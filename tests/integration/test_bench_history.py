"""``ffrtmp bench append --history`` at a tiny size: every check kind lands its appends."""

from __future__ import annotations

import msgspec
import pytest

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
