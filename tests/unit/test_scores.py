"""Derived scores: frames per joule and per CPU-second, QoE from VMAF and stalls."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.outcome import Measured, results
from agent.quality import Scores
from agent.scores import STALL_FACTOR, per_unit, qoe, scored
from events.job_events import JobResults


@pytest.mark.parametrize(
    ("frames", "amount", "expected"),
    [(300, 150.0, 2.0), (300, None, None), (300, 0.0, None), (0, 10.0, 0.0)],
)
def test_per_unit(frames: int, amount: float | None, expected: float | None) -> None:
    """Frames per unit; unmeasured or zero amounts give None, never a division by zero."""
    assert per_unit(frames, amount) == expected


@pytest.mark.parametrize(
    ("vmaf", "stalls", "expected"),
    [
        (90.0, 0, 90.0),
        (90.0, None, 90.0),
        (90.0, 1, 72.0),
        (90.0, 2, 57.6),
        (None, 0, None),
    ],
)
def test_qoe(vmaf: float | None, stalls: int | None, expected: float | None) -> None:
    """QoE is VMAF discounted by 20 % per stall; None without VMAF."""
    assert qoe(vmaf, stalls) == pytest.approx(expected)


@given(st.floats(0, 100), st.integers(0, 50))
def test_qoe_stays_in_range_and_falls_with_stalls(vmaf: float, stalls: int) -> None:
    """QoE is within 0..100 and never rises with another stall."""
    score = qoe(vmaf, stalls)
    assert score is not None
    assert 0 <= score <= 100
    worse = qoe(vmaf, stalls + 1)
    assert worse is not None
    assert worse <= score
    assert worse == pytest.approx(score * STALL_FACTOR)


def test_scored_fills_every_derived_field() -> None:
    """The scored results derive the efficiencies and QoE from the measured fields."""
    filled = scored(JobResults(wall_s=2, frames=60, cpu_s=3.0, energy_j=12.0, vmaf=95.0))
    assert filled.frames_per_cpu_s == 20.0
    assert filled.frames_per_joule == 5.0
    assert filled.qoe == 95.0


def test_results_from_measurements() -> None:
    """Rates come from frames, the scenario's frame rate and the running time."""
    measured = Measured(wall_s=2.0, frames=60, fps=30, cpu_s=1.5, output_bytes=250_000)
    done = results(measured, Scores(vmaf=80.0))
    assert done.encode_fps == 30.0
    assert done.speed == 1.0
    assert done.bitrate_kbps == 1000.0
    assert done.energy_j is None
    assert done.frames_per_joule is None
    assert done.qoe == 80.0


def test_zero_energy_is_reported_as_unmeasured() -> None:
    """A counter that did not move says nothing: energy is None, not 0."""
    assert results(Measured(wall_s=1.0, frames=30, fps=30, energy_j=0.0)).energy_j is None
