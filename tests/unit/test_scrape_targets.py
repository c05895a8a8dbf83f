"""The file_sd targets ``ffrtmp up`` writes for Prometheus, and its agents' fixed ports."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.errors import InvalidSpec
from ffrtmp.cli import app
from ffrtmp.farm import FarmSettings, Layout, announcement, plan
from ffrtmp.scrape_targets import agent_ports, targets, write_targets

CLI = ("python", "-m", "ffrtmp.cli")


def test_agent_ports_count_up_from_the_base_or_are_free_ones() -> None:
    """``--agent-port-base 9101`` gives 9101, 9102, …; without it each port is a free one."""
    assert agent_ports(3, 9101, lambda: 0) == (9101, 9102, 9103)
    free = itertools.count(40000)
    assert agent_ports(2, None, lambda: next(free)) == (40000, 40001)
    assert agent_ports(0, 9101, lambda: 0) == ()


@pytest.mark.parametrize("base", [0, -5, 65535])
def test_a_base_that_runs_past_the_port_range_is_refused(base: int) -> None:
    """Three agents from 65535 (or a base of 0 or less) is a clear error, not a crash later."""
    with pytest.raises(InvalidSpec):
        agent_ports(3, base, lambda: 0)


def test_targets_list_the_exporter_and_each_agent_with_its_id(tmp_path: Path) -> None:
    """file_sd files: the exporter, a labelled group per agent; ``up`` says where they are."""
    settings = FarmSettings(
        data_dir=str(tmp_path), metrics_port=19090, agents=2, agent_ports=(9101, 9102)
    )
    layout = Layout.under(settings.data_dir)
    children = plan(settings, layout, CLI)
    assert targets(children) == {
        "exporter.json": [{"targets": ["127.0.0.1:19090"], "labels": {"component": "exporter"}}],
        "agents.json": [
            {"targets": ["127.0.0.1:9101"], "labels": {"component": "agent", "agent": "local-1"}},
            {"targets": ["127.0.0.1:9102"], "labels": {"component": "agent", "agent": "local-2"}},
        ],
    }
    folder = write_targets(layout, children)
    assert str(folder) in "\n".join(announcement(settings, layout, children))
    assert folder == tmp_path.resolve() / "prometheus"
    assert sorted(p.name for p in folder.iterdir()) == ["agents.json", "exporter.json"]
    written = json.loads((folder / "agents.json").read_text())
    assert written == targets(children)["agents.json"]


def test_up_refuses_an_agent_port_the_farm_already_uses(tmp_path: Path) -> None:
    """``--agent-port-base`` onto the metrics port is one clear error; nothing starts or is made."""
    data = tmp_path / "farm"
    argv = ["up", "--agents", "2", "--metrics-port", "19091", "--agent-port-base", "19090"]
    result = CliRunner().invoke(app, [*argv, "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "port 19091 is asked for twice (--metrics-port and --agent-port-base)" in result.output
    assert not data.exists()
