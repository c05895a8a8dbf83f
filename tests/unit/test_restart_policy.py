"""The restart policy of ``ffrtmp up``: doubling delays, a reset after steady runs, a limit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ffrtmp.restart import (
    NO_RESTART,
    GiveUp,
    History,
    Restart,
    RestartPolicy,
    after_death,
    started,
)

POLICY = RestartPolicy(delay_s=1.0, max_delay_s=8.0, steady_s=30.0, burst=5, interval_s=60.0)


def _crash_loop(policy: RestartPolicy, run_s: float, deaths: int) -> list[Restart | GiveUp]:
    """A child that dies ``run_s`` after each start; every decision until it is given up."""
    now, history = 0.0, started(History(), 0.0, policy)
    decisions: list[Restart | GiveUp] = []
    for _ in range(deaths):
        now += run_s
        decision, history = after_death(history, now, policy)
        decisions.append(decision)
        if isinstance(decision, GiveUp):
            break
        now += decision.after_s
        history = started(history, now, policy)
    return decisions


def test_quick_deaths_double_the_delay_until_the_start_limit() -> None:
    """1 s, 2 s, 4 s, 8 s, then a fifth start within the minute would be a sixth: given up."""
    decisions = _crash_loop(POLICY, run_s=0.5, deaths=10)
    assert decisions[:4] == [Restart(after_s=d, number=n) for n, d in enumerate((1, 2, 4, 8), 1)]
    assert decisions[4] == GiveUp(why="start limit: 5 starts within 60 s")
    assert len(decisions) == 5


def test_the_delay_is_capped() -> None:
    """A wide start limit lets the delay grow to its cap and stay there."""
    loose = RestartPolicy(delay_s=1.0, max_delay_s=8.0, burst=100, interval_s=1.0)
    delays = [d.after_s for d in _crash_loop(loose, run_s=0.5, deaths=7) if isinstance(d, Restart)]
    assert delays == [1, 2, 4, 8, 8, 8, 8]


def test_a_steady_run_starts_the_doubling_over() -> None:
    """A child that ran past ``steady_s`` before dying is restarted after the first delay again."""
    decisions = _crash_loop(POLICY, run_s=45.0, deaths=8)
    assert {d.after_s for d in decisions if isinstance(d, Restart)} == {1.0}
    assert not any(isinstance(d, GiveUp) for d in decisions)


def test_no_restart_gives_up_at_once() -> None:
    """``--no-restart``: the first death leaves the child down, saying why."""
    assert _crash_loop(NO_RESTART, run_s=1.0, deaths=3) == [GiveUp(why="--no-restart")]


@given(
    runs=st.lists(st.floats(min_value=0.0, max_value=120.0), min_size=1, max_size=40),
    burst=st.integers(min_value=1, max_value=8),
)
def test_never_more_starts_in_a_window_than_the_burst(runs: list[float], burst: int) -> None:
    """Whatever the run lengths, no ``interval_s`` window holds more than ``burst`` starts."""
    policy = RestartPolicy(delay_s=0.5, max_delay_s=10.0, burst=burst, interval_s=30.0)
    now, history, starts = 0.0, started(History(), 0.0, policy), [0.0]
    for run_s in runs:
        now += run_s
        decision, history = after_death(history, now, policy)
        if isinstance(decision, GiveUp):
            break
        assert 0 < decision.after_s <= policy.max_delay_s
        now += decision.after_s
        history = started(history, now, policy)
        starts.append(now)
        assert decision.number == len(starts) - 1
    for first in starts:
        assert len([s for s in starts if first <= s < first + policy.interval_s]) <= burst
