"""What an agent has done, counted: for its metrics, its logs, and tests that prove no rerun.

``AgentStats`` are plain counters, read by ``agent.health``'s collector at scrape time. A
``Journal`` keeps the attempts themselves; only a simulated agent keeps one (its lists grow with
every dispatch, which a long-running agent must not do).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from events.enums import ControlAction

AttemptKey = tuple[str, int]  # (job, attempt)


@dataclass
class AgentStats:
    """Counters since the agent started."""

    dispatches: int = 0  # dispatches received
    executions: int = 0  # attempts begun: their Start was stored
    completed: int = 0
    failed: int = 0  # attempts that ended in a failure report, the agent's refusals included
    canceled: int = 0
    dropped: int = 0  # attempts given up because the job moved on
    refused: int = 0  # dispatches beyond the free slots
    controls: int = 0
    malformed: int = 0  # work messages set aside on the dead-letter subject
    errors: int = 0  # reports that could not be written
    outage_retries: int = 0  # reports sent again because the store did not answer
    heartbeats: int = 0


@dataclass
class Journal:
    """Every attempt the agent saw, began, dropped or refused, and every control it received."""

    executions: list[AttemptKey] = field(default_factory=list)
    dispatches_seen: list[AttemptKey] = field(default_factory=list)
    controls_seen: list[tuple[str, int, ControlAction]] = field(default_factory=list)
    dropped: list[AttemptKey] = field(default_factory=list)
    refused: list[AttemptKey] = field(default_factory=list)
