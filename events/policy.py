"""Pure policy: retry backoff, time budgets and queue order. Numbers a farm tunes live here.

Every function takes what it needs as arguments (including the clock's reading), so the
scheduler, the agents and the tests get the same answer from the same facts.
"""

from __future__ import annotations

from typing import Final

import msgspec

from events.enums import RETRYABLE_REASONS, Engine, FailureReason, Priority, Queue
from events.scenarios import Scenario


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Exponential backoff: ``base_s * 2**n`` for the n-th retry (from 0), capped."""

    base_s: float = 5.0
    cap_s: float = 300.0


class BudgetPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How long an attempt may run before it is timed out, when the spec does not say.

    The expected encode time is ``duration × pixel rate ÷ reference rate × codec cost ÷ device
    speed``; the budget is that times ``safety`` plus ``startup_s``, and never under ``min_s``.
    The reference is 1080p30 H.264 at real time on one CPU encoder. A paced (live) job cannot
    go faster than 1.0x, so its budget is never under ``duration × (1 + pace_slack)`` plus
    ``startup_s``. A job whose duration is not known has no budget (``NO_BUDGET``): the stall
    window protects it.
    """

    startup_s: float = 30.0
    pace_slack: float = 0.1
    safety: float = 4.0
    min_s: float = 60.0
    reference_pixels_per_s: float = 1920 * 1080 * 30
    codec_cost: dict[str, float] = msgspec.field(
        default_factory=lambda: {"h264": 1.0, "hevc": 3.0, "av1": 4.0}
    )
    gpu_speedup: float = 8.0
    engine_cost: dict[str, float] = msgspec.field(
        default_factory=lambda: {Engine.FFMPEG: 1.0, Engine.GSTREAMER: 1.2, Engine.AUTO: 1.2}
    )


class OrderPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Queue order with aging, as one time-invariant number per job.

    A job's key is the time it was queued plus a delay for its queue and priority; smaller
    keys go first. ``live`` beats ``default`` beats ``batch``, then ``high`` beats ``medium``
    beats ``low``, then FIFO — among jobs queued within the delays of each other. A job that
    has waited longer than the difference overtakes: a low job queued 5 minutes before a high
    one goes first, so nothing starves. Because the key does not change as time passes, a heap
    keeps the order.
    """

    queue_delay_s: dict[str, float] = msgspec.field(
        default_factory=lambda: {Queue.LIVE: 0.0, Queue.DEFAULT: 900.0, Queue.BATCH: 3600.0}
    )
    priority_delay_s: dict[str, float] = msgspec.field(
        default_factory=lambda: {Priority.HIGH: 0.0, Priority.MEDIUM: 60.0, Priority.LOW: 300.0}
    )


NO_BUDGET: Final = 0.0
"""The budget of an attempt whose media duration is unknown or unbounded: none."""
DEFAULT_RETRY: Final = RetryPolicy()
DEFAULT_BUDGET: Final = BudgetPolicy()
DEFAULT_ORDER: Final = OrderPolicy()


def backoff_s(retries_done: int, policy: RetryPolicy = DEFAULT_RETRY) -> float:
    """Delay before the next retry, given how many retries already happened: 5, 10, 20 … 300 s."""
    exponent = min(retries_done, 30)  # 2**30 × 5 s is far past any cap
    return float(min(policy.base_s * (2**exponent), policy.cap_s))


def retry_at(
    reason: FailureReason,
    retries_done: int,
    max_retries: int,
    now: float,
    policy: RetryPolicy = DEFAULT_RETRY,
) -> float | None:
    """When a failed attempt runs again, or None when it must not (reason or retries used up)."""
    if reason not in RETRYABLE_REASONS or retries_done >= max_retries:
        return None
    return now + backoff_s(retries_done, policy)


def time_budget_s(
    scenario: Scenario,
    duration_s: float | None,
    engine: Engine = Engine.FFMPEG,
    override_s: float | None = None,
    policy: BudgetPolicy = DEFAULT_BUDGET,
    *,
    paced: bool = False,
) -> float:
    """Seconds an attempt may run: the spec's override, else from scenario, duration, engine.

    ``paced``: the output is live, so the attempt runs at 1.0x at best. ``NO_BUDGET`` when the
    duration is unknown (a whole input not yet opened) or unbounded (a live stream).
    """
    if override_s is not None:
        return override_s
    if duration_s is None:
        return NO_BUDGET
    relative = scenario.pixels_per_second / policy.reference_pixels_per_s
    cost = policy.codec_cost.get(scenario.codec, 4.0) * policy.engine_cost.get(engine, 1.5)
    device = policy.gpu_speedup if scenario.needs_gpu else 1.0
    expected = duration_s * relative * cost / device
    budget = max(policy.min_s, policy.startup_s + policy.safety * expected)
    if paced:
        budget = max(budget, policy.startup_s + duration_s * (1.0 + policy.pace_slack))
    return budget


def order_key(
    queue: Queue, priority: Priority, queued_at: float, policy: OrderPolicy = DEFAULT_ORDER
) -> float:
    """Placement order of a queued job: smaller first; see ``OrderPolicy``."""
    return queued_at + policy.queue_delay_s[queue] + policy.priority_delay_s[priority]
