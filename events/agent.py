"""The agent as a pure decider and fold: what the log says an agent can do and whether it is there.

An agent registers and deregisters itself (its own events, on its own subject); everything else
is decided here, beside the job's decider (``events.job``) and in its shape: ``decide_agent``
turns an operator's command (quarantine, clear, remove) or the scheduler's observation (lost,
returned, a streak of failures) into events, ``evolve_agent`` folds them. Nothing here reads a
clock: ``now`` and ``cause`` are arguments. A command that does not apply (clear an agent that
is not quarantined, declare lost one that is not online) yields no events, so a repeated or
stale decision is a no-op. The fold is what placement and the read models start from; live
load comes from heartbeats, not from here.
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
from events.commands import (
    AgentCommand,
    AgentObservation,
    AgentOperatorCommand,
    ClearAgent,
    DeclareLost,
    DeclareReturned,
    QuarantineAgent,
    QuarantineFaulty,
    RemoveAgent,
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


def decide_agent(
    state: AgentState, command: AgentCommand, now: float, cause: str = ""
) -> list[AgentEvent]:
    """The events a command produces against the agent's current state; see the module doc."""
    match command:
        case QuarantineAgent() | ClearAgent() | RemoveAgent():
            return _decide_operator(state, command, now, cause)
        case DeclareLost() | DeclareReturned() | QuarantineFaulty():
            return _decide_scheduler(state, command, now, cause)
        case _:
            assert_never(command)


def _decide_operator(
    state: AgentState, command: AgentOperatorCommand, now: float, cause: str
) -> list[AgentEvent]:
    """Quarantine, clear or remove; an agent already so yields nothing."""
    agent, by = state.agent, command.by
    match command:
        case QuarantineAgent() if not state.quarantined:
            reason = command.reason or "quarantined by an operator"
            return [AgentQuarantined(agent=agent, at=now, cause=cause, by=by, reason=reason)]
        case ClearAgent() if state.quarantined:
            return [AgentCleared(agent=agent, at=now, cause=cause, by=by)]
        case RemoveAgent() if state.status is not AgentStatus.OFFLINE:
            reason = command.reason or f"removed by {by or 'an operator'}"
            return [AgentDeregistered(agent=agent, at=now, cause=cause, reason=reason)]
        case QuarantineAgent() | ClearAgent() | RemoveAgent():
            return []
        case _:
            assert_never(command)


def _decide_scheduler(
    state: AgentState, command: AgentObservation, now: float, cause: str
) -> list[AgentEvent]:
    """What the scheduler observed, recorded; one the agent has moved past yields nothing.

    A return is recorded as observed: the heartbeat came while the agent was lost, even if the
    agent has registered again since.
    """
    agent = state.agent
    match command:
        case DeclareLost() if state.status is AgentStatus.ONLINE:
            return [AgentLost(agent=agent, at=now, cause=cause, last_seen=command.last_seen)]
        case DeclareReturned():
            return [AgentReturned(agent=agent, at=now, cause=cause)]
        case QuarantineFaulty() if not state.quarantined:
            why = (
                f"{command.failures} jobs failed in a row on this agent while "
                f"{command.completed_elsewhere} completed elsewhere"
            )
            return [AgentQuarantined(agent=agent, at=now, cause=cause, reason=why)]
        case DeclareLost() | QuarantineFaulty():
            return []
        case _:
            assert_never(command)
