"""``ffrtmp bench api`` runs end to end at a tiny size and reports every figure it promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import require_nats_server

pytestmark = pytest.mark.timeout(300)


def test_the_api_bench_runs_and_loses_no_event() -> None:
    """Real scheduler and API processes; submits both ways; streams held and all events seen."""
    require_nats_server()
    argv = [str(Path(sys.executable).parent / "ffrtmp"), "bench", "api", "--rate", "20",
            "--requests", "20", "--rounds", "1", "--streams", "3", "--hold-s", "2",
            "--output", "json"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=280, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["benchmark"] == "api"
    for name in ("api_p50_ms", "api_p99_ms", "nats_p50_ms", "nats_p99_ms"):
        assert report[name] > 0
    assert report["api_p99_ms"] >= report["api_p50_ms"]
    assert report["events_expected"] >= 3 * 2  # submitted and a refused resume, at least, each
    assert report["events_received"] == report["events_expected"]
    assert report["events_lost"] == 0
    assert report["events_doubled"] == 0
