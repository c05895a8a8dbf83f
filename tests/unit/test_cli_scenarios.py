"""``ffrtmp scenarios`` lists the catalogue a spec error points people to."""

from __future__ import annotations

import msgspec
from typer.testing import CliRunner

from events.scenarios import SCENARIOS
from ffrtmp.cli import app


def test_json_lists_every_cpu_scenario() -> None:
    """``--cpu -o json`` prints exactly the CPU scenarios as JSON."""
    result = CliRunner().invoke(app, ["scenarios", "--cpu", "--output", "json"])
    assert result.exit_code == 0
    names = {row["name"] for row in msgspec.json.decode(result.stdout)}
    assert names == {name for name, s in SCENARIOS.items() if not s.needs_gpu}


def test_table_names_the_seed_scenarios() -> None:
    """The table shows the names operators know."""
    result = CliRunner().invoke(app, ["scenarios"])
    assert result.exit_code == 0
    assert "1080p-h264" in result.stdout
    assert "4K60-h264" in result.stdout


def test_bad_output_format_is_a_usage_error() -> None:
    """An unknown output format exits 2 and names the choices."""
    result = CliRunner().invoke(app, ["scenarios", "--output", "xml"])
    assert result.exit_code == 2
