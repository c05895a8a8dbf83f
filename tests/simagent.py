"""A simulated agent: the real agent service with a scripted engine instead of FFmpeg.

Scheduler integration tests need agents by the dozen that behave exactly as
a farm's agents do, because they are the farm's agent loop (``agent.service.AgentService``):
they register, pull dispatches and controls from their durable consumers, write each attempt's
reports through ``agent.report.JobWriter`` and heartbeat. Only the work is pretend
(``agent.scripted``: a ``Behaviour`` says how long an attempt takes and how it ends), and the
agent keeps a journal (``executions``, ``dropped`` …) that lets a test prove nothing ran twice.
"""

from __future__ import annotations

from typing import Final

from nats.aio.client import Client as NatsClient

from agent.attempt import AttemptSettings
from agent.scripted import (
    DEFAULT_BEHAVIOUR,
    Behaviour,
    Outcome,
    Plan,
    ScriptedEngine,
    always,
)
from agent.service import AgentService, AgentSettings
from agent.tally import AttemptKey, Journal
from events.agent_events import Capabilities
from events.enums import ControlAction
from events.store import EventStore
from events.subjects import Subjects
from events.work import Dispatch

__all__ = ["DEFAULT_BEHAVIOUR", "Behaviour", "Outcome", "Plan", "SimAgent", "always"]

MAX_DELIVER: Final = 5
POLL_S: Final = 0.01
"""How often a simulated attempt is looked at: scripted attempts are short."""


class SimAgent(AgentService):
    """A pretend agent on the real wire: register, pull, report, heartbeat, honour controls."""

    def __init__(
        self,
        nc: NatsClient,
        store: EventStore,
        subjects: Subjects,
        agent: str,
        capabilities: Capabilities,
        slots: int,
        *,
        heartbeat_s: float = 5.0,
        behaviour: Behaviour | Plan = DEFAULT_BEHAVIOUR,
        max_deliver: int = MAX_DELIVER,
    ) -> None:
        """Describe the agent; nothing happens on the wire until ``start``.

        A simulated agent keeps no logs and does not wait for its attempts when it stops:
        what still runs is failed as a retryable resource error at once.
        """
        self.scripted = ScriptedEngine(behaviour)
        settings = AgentSettings(
            slots=slots,
            heartbeat_s=heartbeat_s,
            drain_grace_s=0.0,
            attempt=AttemptSettings(poll_s=POLL_S),
            max_deliver=max_deliver,
            keep_logs=False,
        )
        super().__init__(
            nc, store, subjects, agent, capabilities, self.scripted, settings, journal=Journal()
        )

    def wants(self, dispatch: Dispatch) -> bool:
        """A dispatch the plan says to ignore is never started: as if it were lost."""
        return self.scripted.plan(dispatch).outcome is not Outcome.IGNORE

    @property
    def _journal(self) -> Journal:
        assert self.journal is not None
        return self.journal

    @property
    def executions(self) -> list[AttemptKey]:
        """Attempts begun: their Start was stored."""
        return self._journal.executions

    @property
    def dispatches_seen(self) -> list[AttemptKey]:
        """Every dispatch received, duplicates included."""
        return self._journal.dispatches_seen

    @property
    def controls_seen(self) -> list[tuple[str, int, ControlAction]]:
        """Every control received."""
        return self._journal.controls_seen

    @property
    def dropped(self) -> list[AttemptKey]:
        """Attempts given up: a report no longer applied."""
        return self._journal.dropped

    @property
    def refused(self) -> list[AttemptKey]:
        """Dispatches beyond the free slots."""
        return self._journal.refused

    @property
    def malformed(self) -> int:
        """Work messages set aside."""
        return self.stats.malformed

    @property
    def errors(self) -> int:
        """Reports that could not be written."""
        return self.stats.errors

    @property
    def heartbeats(self) -> int:
        """Heartbeats sent."""
        return self.stats.heartbeats
