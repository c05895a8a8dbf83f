"""Readers of the deploy files for the tests that check them against the code.

PyYAML is not a dependency, so ``compose.yaml``, the Prometheus config and the alert rules are
kept to a plain block-YAML subset that ``parse_yaml`` reads: mappings, sequences (of scalars or
of mappings), double-quoted strings (JSON escapes), JSON-style flow lists and ``{}``. Anything
outside the subset fails the parse loudly instead of being misread.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
_KEY = re.compile(r"^([A-Za-z0-9_.-]+):(?:\s+(.*))?$")
_METRIC = re.compile(r"\bffrtmp_[a-z0-9_]+")

Line = tuple[int, str]


def parse_yaml(text: str) -> Any:
    """The document of a file in the block-YAML subset described above."""
    lines = [
        (len(raw) - len(raw.lstrip(" ")), raw.strip())
        for raw in text.splitlines()
        if raw.strip() and not raw.strip().startswith("#")
    ]
    value, end = _block(lines, 0, lines[0][0])
    if end != len(lines):
        msg = f"unparsed from line {lines[end]!r}"
        raise ValueError(msg)
    return value


def _block(lines: list[Line], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _mapping(lines: list[Line], i: int, indent: int) -> tuple[dict[str, Any], int]:
    out: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        found = _KEY.match(lines[i][1])
        if found is None:
            msg = f"not a 'key: value' line: {lines[i]!r}"
            raise ValueError(msg)
        key, rest = found.group(1), found.group(2)
        if key in out:
            msg = f"duplicate key {key!r}"
            raise ValueError(msg)
        i += 1
        if rest:
            out[key] = _scalar(rest)
        elif i < len(lines) and lines[i][0] > indent:
            out[key], i = _block(lines, i, lines[i][0])
        else:
            out[key] = None
    if i < len(lines) and lines[i][0] > indent:
        msg = f"unexpected indentation at {lines[i]!r}"
        raise ValueError(msg)
    return out, i


def _sequence(lines: list[Line], i: int, indent: int) -> tuple[list[Any], int]:
    out: list[Any] = []
    while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
        item = lines[i][1][2:].strip()
        if _KEY.match(item):
            lines[i] = (indent + 2, item)  # "- key: value" opens a mapping at the item's column
            value, i = _mapping(lines, i, indent + 2)
        else:
            value, i = _scalar(item), i + 1
        out.append(value)
    return out, i


def _scalar(text: str) -> Any:
    if text.startswith(("[", '"', "{")):
        return json.loads(text)
    if text.startswith(("'", "&", "*", "|", ">")):
        msg = f"outside the YAML subset: {text!r}"
        raise ValueError(msg)
    return text


def load_yaml(path: Path) -> Any:
    """``parse_yaml`` of a file."""
    return parse_yaml(path.read_text())


def dashboard_exprs() -> dict[str, list[str]]:
    """Every PromQL expression of each shipped dashboard, by file name."""
    return {
        path.name: [
            target["expr"]
            for panel in json.loads(path.read_text())["panels"]
            for target in panel["targets"]
        ]
        for path in sorted(DASHBOARDS.glob("*.json"))
    }


def alert_exprs() -> list[str]:
    """Every alert rule's expression."""
    rules = load_yaml(DEPLOY / "prometheus" / "alerts.yml")
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """The ffrtmp series an expression reads."""
    return set(_METRIC.findall(expr))
