"""``ffrtmp bench e2e`` and ``bench overhead`` at a tiny size: they run and report sane figures.

Speed is not asserted here (BENCHMARKS.md holds the measured figures); these tests prove that
the benchmarks measure what they say: every job counted, every figure positive.
"""

from __future__ import annotations

import msgspec
import pytest

from ffrtmp.bench.e2e import E2EReport, E2ESettings, bench_e2e
from ffrtmp.bench.overhead import OverheadReport, OverheadSettings, bench_overhead

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("nats_binary")]


async def test_e2e_runs_every_job_and_reports_its_figures() -> None:
    """A small burst completes; every steady submission is timed to its start; costs counted."""
    settings = E2ESettings(
        jobs=60,
        agents=2,
        slots=5,
        rate=40,
        seconds=0.5,
        warmup_s=0.1,
        rounds=1,
        full_log_events=400,
    )
    report = await bench_e2e(settings)
    assert report.submitted == 20
    assert report.jobs_per_s > 0
    assert report.jobs_per_s_default_fsync > 0
    assert report.jobs_per_s_full_log > 0
    assert report.flat_ratio == pytest.approx(report.jobs_per_s_full_log / report.jobs_per_s, 0.01)
    # A job: JobSubmitted (the leader answered the submit: no command stored), JobAssigned (its
    # own dispatch), JobStarted, JobCompleted.
    assert report.writes_per_job == 4.0
    assert report.raw_fsync_msgs_per_s > 0
    assert report.limit_ratio == pytest.approx(
        report.jobs_per_s * report.writes_per_job / report.raw_fsync_msgs_per_s, 0.05
    )
    assert report.cpu_ms_per_job > 0
    assert 0 < report.p50_submit_to_start_ms <= report.p99_submit_to_start_ms
    assert report.p99_submit_to_start_ms <= report.max_submit_to_start_ms
    assert msgspec.json.decode(msgspec.json.encode(report), type=E2EReport) == report


async def test_overhead_runs_both_sides_and_reports_the_ratio() -> None:
    """Two tiny encodes directly and through an agent process: both timed, and their ratio."""
    settings = OverheadSettings(jobs=2, scenario="480p-h264", duration_s=0.5, parallel=1, rounds=1)
    report = await bench_overhead(settings)
    assert report.direct_wall_s > 0
    assert report.ffrtmp_wall_s > 0
    assert report.ratio == pytest.approx(report.direct_wall_s / report.ffrtmp_wall_s, rel=0.01)
    assert report.agent_cpu_s_per_job > 0
    assert "-progress" in report.argv
    assert msgspec.json.decode(msgspec.json.encode(report), type=OverheadReport) == report
