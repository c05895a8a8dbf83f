"""The chaos harness, short: every component killed with SIGKILL under load, no promise broken.

Seed 36 draws, in the first half minute, a kill of a scheduler, an agent, the projector and the
nats-server (the schedule depends only on the seed). The run must end with every job terminal,
no violation in the log or the projection, and no attempt executed twice by the agents' own
count.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ffrtmp.bench.chaos import ChaosSettings, run_chaos

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.usefixtures("nats_binary")]


async def test_killing_every_component_under_load_breaks_no_promise(tmp_path: Path) -> None:
    """Scheduler, agent, projector and server killed in turn: 0 violations, nothing ran twice."""
    settings = ChaosSettings(minutes=0.5, seed=36, kill_every_s=(3.0, 6.0), root=str(tmp_path))
    report = await run_chaos(settings)
    assert report.violations == []
    assert report.ran_twice == []
    assert {c for c, n in report.kills.items() if n} == {"scheduler", "agent", "projector", "nats"}
    assert report.jobs >= 20
    assert sum(report.statuses.values()) == report.jobs
    assert report.executions >= report.statuses.get("completed", 0)
