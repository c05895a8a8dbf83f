"""The alert rules and Prometheus configs as the real ``promtool`` (Debian's prometheus) sees them.

``promtool test rules`` runs the unit tests in ``deploy/prometheus/tests``: every alert fires on
the fault it names and stays quiet on a look-alike. ``check rules`` and ``check config`` hold the
shipped files to Prometheus's own parser. A missing promtool skips locally and fails in CI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.deploy_files import DEPLOY, load_yaml
from tests.promtool import promtool

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "alerts.yml"
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))
CONFIGS = [PROMETHEUS / "prometheus.yml", PROMETHEUS / "local.yml"]


def alerts() -> list[str]:
    """The name of every alert the repository ships."""
    rules = load_yaml(RULES)
    return [rule["alert"] for group in rules["groups"] for rule in group["rules"]]


def cases() -> list[dict[str, Any]]:
    """Every alert_rule_test case of the unit test files."""
    return [
        case
        for path in RULE_TESTS
        for test in load_yaml(path)["tests"]
        for case in test.get("alert_rule_test", [])
    ]


def test_every_alert_passes_its_promtool_unit_tests() -> None:
    """``promtool test rules`` passes on every unit test file of the alert rules."""
    assert RULE_TESTS
    out = promtool("test", "rules", *RULE_TESTS)
    assert "SUCCESS" in out


@pytest.mark.parametrize("alert", alerts())
def test_every_alert_is_tested_firing_and_quiet(alert: str) -> None:
    """Each alert has a case where it fires and one where it stays quiet."""
    mine = [case for case in cases() if case["alertname"] == alert]
    assert any(case["exp_alerts"] for case in mine), f"{alert} is never tested firing"
    assert any(not case["exp_alerts"] for case in mine), f"{alert} is never tested quiet"


def test_the_rules_pass_promtool_check_rules() -> None:
    """``promtool check rules`` accepts the shipped alert rules."""
    promtool("check", "rules", RULES)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_the_configs_pass_promtool_check_config(config: Path) -> None:
    """``promtool check config`` accepts the compose and the local-farm Prometheus configs."""
    out = promtool("check", "config", config)
    assert "SUCCESS: 1 rule files found" in out
