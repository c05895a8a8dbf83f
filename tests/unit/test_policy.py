"""Policy: backoff, retry decisions, time budgets and queue order with aging."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import policy
from events.enums import Engine, FailureReason, Priority, Queue
from events.scenarios import scenario


@pytest.mark.parametrize(
    ("retries_done", "delay"),
    [(0, 5.0), (1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0), (6, 300.0), (50, 300.0)],
)
def test_backoff_doubles_from_five_seconds_capped_at_five_minutes(
    retries_done: int, delay: float
) -> None:
    """The n-th retry waits 5 s × 2^n, never more than 300 s."""
    assert policy.backoff_s(retries_done) == delay


@pytest.mark.parametrize(
    ("reason", "retries_done", "max_retries", "due"),
    [
        (FailureReason.RUNTIME_ERROR, 0, 3, 105.0),
        (FailureReason.TIMEOUT, 2, 3, 120.0),
        (FailureReason.AGENT_LOST, 1, 3, 110.0),
        (FailureReason.RESOURCE_ERROR, 0, 1, 105.0),
        (FailureReason.RUNTIME_ERROR, 3, 3, None),
        (FailureReason.RUNTIME_ERROR, 0, 0, None),
        (FailureReason.USER_ERROR, 0, 3, None),
        (FailureReason.CAPABILITY_MISMATCH, 0, 3, None),
    ],
)
def test_retry_decision(
    reason: FailureReason, retries_done: int, max_retries: int, due: float | None
) -> None:
    """Retryable reasons retry while retries are left; user and capability errors never do."""
    assert policy.retry_at(reason, retries_done, max_retries, now=100.0) == due


def test_budget_override_wins() -> None:
    """A spec's timeout replaces the derived budget."""
    assert policy.time_budget_s(scenario("4K60-av1"), 600, override_s=42.0) == 42.0


@given(st.floats(min_value=1, max_value=3600), st.floats(min_value=1, max_value=3600))
def test_budget_grows_with_duration(a: float, b: float) -> None:
    """A longer clip never gets a shorter budget."""
    sc = scenario("1080p-h264")
    if a <= b:
        assert policy.time_budget_s(sc, a) <= policy.time_budget_s(sc, b)


def test_budget_reflects_scenario_and_engine() -> None:
    """Heavier codecs and resolutions get more time; NVENC less than CPU; never under a minute."""
    budget = policy.time_budget_s
    assert budget(scenario("4K60-hevc"), 60) > budget(scenario("1080p-hevc"), 60)
    assert budget(scenario("1080p-hevc"), 60) > budget(scenario("1080p-h264"), 60)
    assert budget(scenario("4K-hevc-nvenc"), 60) < budget(scenario("4K-hevc"), 60)
    assert budget(scenario("4K-hevc"), 60, Engine.GSTREAMER) > budget(scenario("4K-hevc"), 60)
    assert budget(scenario("480p-h264"), 1) == policy.DEFAULT_BUDGET.min_s


def test_queue_then_priority_then_fifo() -> None:
    """Among jobs queued together: live before default before batch, high before low, then FIFO."""
    key = policy.order_key
    assert key(Queue.LIVE, Priority.LOW, 100) < key(Queue.DEFAULT, Priority.HIGH, 100)
    assert key(Queue.DEFAULT, Priority.LOW, 100) < key(Queue.BATCH, Priority.HIGH, 100)
    assert key(Queue.DEFAULT, Priority.HIGH, 100) < key(Queue.DEFAULT, Priority.MEDIUM, 100)
    assert key(Queue.DEFAULT, Priority.MEDIUM, 100) < key(Queue.DEFAULT, Priority.MEDIUM, 101)


def test_aging_lets_a_long_waiting_low_job_overtake() -> None:
    """A low job that waited longer than the priority gap goes before a fresh high one."""
    gap = policy.DEFAULT_ORDER.priority_delay_s[Priority.LOW]
    old_low = policy.order_key(Queue.DEFAULT, Priority.LOW, 1000.0)
    fresh_high = policy.order_key(Queue.DEFAULT, Priority.HIGH, 1000.0 + gap + 1)
    assert old_low < fresh_high


@given(
    st.sampled_from(list(Queue)),
    st.sampled_from(list(Priority)),
    st.floats(min_value=1.7e9, max_value=2e9),
    st.floats(min_value=0, max_value=1e6),
)
def test_order_is_monotonic_in_wait(
    queue: Queue, priority: Priority, at: float, later: float
) -> None:
    """Within one class, a job queued earlier never sorts after one queued later."""
    assert policy.order_key(queue, priority, at) <= policy.order_key(queue, priority, at + later)
