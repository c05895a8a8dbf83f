"""When ``ffrtmp up`` restarts a child that died: systemd's restart policy, as a pure function.

A child that dies is restarted after a delay that doubles with each quick death in a row
(``delay_s``, 2x, 4x … up to ``max_delay_s``; systemd's ``RestartSec``, ``RestartSteps`` and
``RestartMaxDelaySec``); a child that ran at least ``steady_s`` before dying starts the doubling
over. A child started more than ``burst`` times within ``interval_s`` is given up on
(``StartLimitBurst``/``StartLimitIntervalSec``): a crash loop then shows as a failed component
with its log, instead of restarting forever. Times are monotonic seconds passed in.
"""

from __future__ import annotations

import msgspec


class RestartPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How a dead child is brought back, and when to stop trying."""

    enabled: bool = True
    delay_s: float = 1.0
    max_delay_s: float = 30.0
    steady_s: float = 30.0
    """A run this long counts as healthy: the next death restarts after ``delay_s`` again."""
    burst: int = 5
    interval_s: float = 60.0


NO_RESTART = RestartPolicy(enabled=False)


class History(msgspec.Struct, frozen=True, kw_only=True):
    """One child's recent starts (oldest first), its quick deaths in a row, its starts in all."""

    starts: tuple[float, ...] = ()
    streak: int = 0
    count: int = 0


class Restart(msgspec.Struct, frozen=True, kw_only=True):
    """Start the child again ``after_s`` from its death; it will be restart number ``number``."""

    after_s: float
    number: int


class GiveUp(msgspec.Struct, frozen=True, kw_only=True):
    """Leave the child down, and why (one phrase)."""

    why: str


Decision = Restart | GiveUp


def started(history: History, at: float, policy: RestartPolicy) -> History:
    """The history once the child has started at ``at`` (starts older than the window dropped)."""
    recent = tuple(s for s in history.starts if at - s < policy.interval_s)
    return msgspec.structs.replace(history, starts=(*recent, at), count=history.count + 1)


def after_death(
    history: History, died_at: float, policy: RestartPolicy
) -> tuple[Decision, History]:
    """What to do about a child that died at ``died_at``, and its history from now on."""
    if not policy.enabled:
        return GiveUp(why="--no-restart"), history
    last = history.starts[-1] if history.starts else died_at
    streak = 1 if died_at - last >= policy.steady_s else history.streak + 1
    delay = min(policy.max_delay_s, policy.delay_s * 2 ** (streak - 1))
    window = [s for s in history.starts if died_at + delay - s < policy.interval_s]
    if len(window) >= policy.burst:
        why = f"start limit: {len(window)} starts within {policy.interval_s:g} s"
        return GiveUp(why=why), history
    # ``count`` starts so far, the first of them no restart: the next one is restart ``count``.
    decision = Restart(after_s=delay, number=history.count)
    return decision, msgspec.structs.replace(history, streak=streak)
