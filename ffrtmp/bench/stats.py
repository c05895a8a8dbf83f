"""The arithmetic of a benchmark: rates, medians, ratios and round order. Pure, no clock."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

import msgspec


class Comparison(msgspec.Struct, frozen=True, kw_only=True):
    """Ours against raw over interleaved rounds: medians, their ratio, and every round's rate."""

    benchmark: str
    messages: int
    rounds: int
    ours_msgs_per_s: float
    raw_msgs_per_s: float
    ratio: float
    target: float
    ours_rounds: list[float]
    raw_rounds: list[float]
    extra: dict[str, float] = {}


def rate(count: int, seconds: float) -> float:
    """Messages per second; a zero or negative duration is a measuring error."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds}")
    return count / seconds


def median(values: Sequence[float]) -> float:
    """The median of at least one value."""
    if not values:
        raise ValueError("no values to take the median of")
    return float(statistics.median(values))


def ratio(ours: float, raw: float) -> float:
    """How ours compares with raw: 1.0 is as fast, 0.5 half as fast."""
    if raw <= 0:
        raise ValueError(f"the raw rate must be positive, got {raw}")
    return ours / raw


def round_order(index: int, names: Sequence[str]) -> list[str]:
    """The order of the measurements in round ``index``: reversed every other round."""
    return list(names) if index % 2 == 0 else list(reversed(names))


def compare(
    benchmark: str,
    messages: int,
    rates: Mapping[str, Sequence[float]],
    target: float,
    extra: Mapping[str, float] | None = None,
) -> Comparison:
    """Summarise the ``ours`` and ``raw`` rates of each round into medians and their ratio."""
    ours, raw = median(rates["ours"]), median(rates["raw"])
    return Comparison(
        benchmark=benchmark,
        messages=messages,
        rounds=len(rates["ours"]),
        ours_msgs_per_s=round(ours, 1),
        raw_msgs_per_s=round(raw, 1),
        ratio=round(ratio(ours, raw), 3),
        target=target,
        ours_rounds=[round(r, 1) for r in rates["ours"]],
        raw_rounds=[round(r, 1) for r in rates["raw"]],
        extra=dict(extra or {}),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0 to 1] of at least one value."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]
