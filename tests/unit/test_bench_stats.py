"""The benchmarks' arithmetic: rates, medians, ratios and the order of interleaved rounds."""

from __future__ import annotations

import pytest

from ffrtmp.bench.stats import compare, median, rate, ratio, round_order


@pytest.mark.parametrize(
    ("values", "expected"),
    [([3.0], 3.0), ([5.0, 1.0, 3.0], 3.0), ([4.0, 1.0, 2.0, 3.0], 2.5)],
)
def test_median_of_odd_and_even_counts(values: list[float], expected: float) -> None:
    """The median is the middle value, or the mean of the two middle ones."""
    assert median(values) == expected


def test_rate_ratio_and_their_refusals() -> None:
    """Rates are count over seconds, ratios ours over raw; zero divisors are refused."""
    assert rate(1000, 0.5) == 2000.0
    assert ratio(80.0, 100.0) == 0.8
    with pytest.raises(ValueError, match="positive"):
        rate(10, 0.0)
    with pytest.raises(ValueError, match="positive"):
        ratio(1.0, 0.0)
    with pytest.raises(ValueError, match="no values"):
        median([])


def test_rounds_alternate_their_order() -> None:
    """Even rounds run in the given order and odd rounds reversed, so neither side always leads."""
    assert round_order(0, ["ours", "raw", "plain"]) == ["ours", "raw", "plain"]
    assert round_order(1, ["ours", "raw", "plain"]) == ["plain", "raw", "ours"]


def test_compare_reports_medians_and_the_ratio_of_medians() -> None:
    """The summary holds each side's median, their ratio, the target and every round."""
    summary = compare(
        "replay", 300, {"ours": [90.0, 70.0, 80.0], "raw": [100.0, 120.0, 110.0]}, 0.7
    )
    assert (summary.ours_msgs_per_s, summary.raw_msgs_per_s) == (80.0, 110.0)
    assert summary.ratio == round(80 / 110, 3)
    assert (summary.rounds, summary.messages, summary.target) == (3, 300, 0.7)
    assert summary.ours_rounds == [90.0, 70.0, 80.0]
