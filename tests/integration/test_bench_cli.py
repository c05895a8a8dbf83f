"""``ffrtmp bench cli`` at a tiny size: it runs whole processes and reports sane figures.

Speed is not asserted (BENCHMARKS.md holds the figures); this proves the bench measures what it
says against a real farm: the setup step, a real scheduler process, every command succeeding.
"""

from __future__ import annotations

import msgspec
import pytest

from ffrtmp.bench.commandline import CliBenchSettings, CliReport, bench_cli

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("nats_binary")]


async def test_cli_bench_times_help_submit_and_a_bulk_file() -> None:
    """Each figure is a positive time, and the bulk rate is the jobs over its seconds."""
    report = await bench_cli(CliBenchSettings(runs=1, bulk_jobs=20))
    assert report.help_ms > 0
    assert report.submit_ms > 0
    assert report.bulk_jobs == 20
    assert report.bulk_jobs_per_s == pytest.approx(20 / report.bulk_s, rel=0.01)
    assert msgspec.json.decode(msgspec.json.encode(report), type=CliReport) == report
