"""``ffrtmp bench schedule --output json`` at toy sizes: one JSON object, every figure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ffrtmp.bench.schedule import ScheduleReport
from ffrtmp.bench.stats import percentile

FIGURES = {
    "placements_per_s",
    "placements_vs_raw_ratio",
    "pure_placements_per_s",
    "p50_submit_to_dispatch_ms",
    "p99_submit_to_dispatch_ms",
    "restart_s",
    "restart_s_small_history",
    "full_replay_s",
    "bytes_per_queued_job",
    "rss_bytes_per_queued_job",
}


@pytest.mark.usefixtures("nats_binary")
def test_schedule_bench_prints_one_json_object_with_every_figure() -> None:
    """Tiny sizes run every measurement and print the figures, the rounds and the machine."""
    argv = [sys.executable, "-c", "from ffrtmp.cli import main; main()", "bench", "schedule"]
    argv += ["--jobs", "200", "--agents", "5", "--seconds", "1", "--history", "2000"]
    argv += ["--rounds", "1", "--output", "json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)  # noqa: S603 -- our own CLI
    report = json.loads(done.stdout)
    assert report.keys() >= FIGURES
    assert set(ScheduleReport.__struct_fields__) == report.keys()
    assert report["submitted"] == report["dispatched"] == 500
    assert report["jobs_in_memory_after_restart"] == 20  # the live jobs only: history forgotten
    assert report["machine"]["fsync"] == "always"


@pytest.mark.parametrize(("q", "expected"), [(0.5, 50.0), (0.99, 99.0), (1.0, 100.0), (0.001, 1.0)])
def test_percentile_is_nearest_rank(q: float, expected: float) -> None:
    """The percentile is the value at rank ceil(q × n), counting from 1."""
    assert percentile([float(v) for v in range(100, 0, -1)], q) == expected
