"""The agent as a pure fold: what the log says an agent can do and whether it is there.

Agents are not decided like jobs: an agent registers itself and the scheduler records what it
observes (lost, returned, quarantined). The fold is what placement and the read models start
from; live load comes from heartbeats, not from here.
"""

from __future__ import annotations

from typing import Final, assert_never

import msgspec

from events.agent_events import (
    AgentCleared,
    AgentDeregistered,
    AgentEvent,
    AgentLost,
    AgentQuarantined,
    AgentRegistered,
    AgentReturned,
    Capabilities,
)
from events.enums import AgentStatus

DRAIN: Final = "drain"
"""A quarantine whose reason starts with this is a drain: an operator is taking the agent out."""


class AgentState(msgspec.Struct, frozen=True, kw_only=True):
    """An agent as its events describe it."""

    agent: str
    status: AgentStatus = AgentStatus.UNKNOWN
    capabilities: Capabilities | None = None
    slots: int = 0
    registered_at: float = 0.0
    last_seen: float = 0.0  # last event about it; heartbeats refine this outside the log
    quarantined: bool = False
    quarantine_reason: str = ""

    @property
    def draining(self) -> bool:
        """Whether an operator is taking it out (``ffrtmp nodes drain``), not a fault."""
        return self.quarantined and self.quarantine_reason.startswith(DRAIN)

    @property
    def placeable(self) -> bool:
        """Whether new work may go to this agent."""
        return self.status is AgentStatus.ONLINE and not self.quarantined and self.slots > 0


def initial_agent(agent: str) -> AgentState:
    """An agent no event mentions yet."""
    return AgentState(agent=agent)


_replace = msgspec.structs.replace


def evolve_agent(state: AgentState, event: AgentEvent) -> AgentState:
    """Fold one agent event; re-registration refreshes capabilities and brings it online."""
    match event:
        case AgentRegistered():
            return _replace(
                state,
                status=AgentStatus.ONLINE,
                capabilities=event.capabilities,
                slots=event.slots,
                registered_at=event.at,
                last_seen=event.at,
            )
        case AgentDeregistered():
            return _replace(state, status=AgentStatus.OFFLINE, last_seen=event.at)
        case AgentLost():
            return _replace(state, status=AgentStatus.LOST, last_seen=event.last_seen)
        case AgentReturned():
            return _replace(state, status=AgentStatus.ONLINE, last_seen=event.at)
        case AgentQuarantined():
            return _replace(state, quarantined=True, quarantine_reason=event.reason)
        case AgentCleared():
            return _replace(state, quarantined=False, quarantine_reason="")
        case _:
            assert_never(event)
