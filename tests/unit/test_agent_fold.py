"""The agent fold: registration, loss, return, quarantine."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.agent import evolve_agent, initial_agent
from events.agent_events import (
    AgentCleared,
    AgentDeregistered,
    AgentLost,
    AgentQuarantined,
    AgentRegistered,
    AgentReturned,
    Capabilities,
)
from events.enums import AgentStatus
from tests.strategies import agent_events


def _registered() -> Any:
    caps = Capabilities(hostname="gpu-1", encoders=("libx264", "h264_nvenc"), cpu_cores=16)
    return AgentRegistered(agent="ag1", at=10.0, capabilities=caps, slots=4)


def test_registration_makes_an_agent_placeable() -> None:
    """A registered agent is online with its capabilities and slots."""
    state = evolve_agent(initial_agent("ag1"), _registered())
    assert state.status is AgentStatus.ONLINE
    assert state.placeable
    assert state.capabilities is not None
    assert state.capabilities.encoders == ("libx264", "h264_nvenc")


def test_lost_then_returned() -> None:
    """A lost agent takes no work until it returns."""
    state = evolve_agent(initial_agent("ag1"), _registered())
    state = evolve_agent(state, AgentLost(agent="ag1", at=30.0, last_seen=14.0, jobs=("j1",)))
    assert (state.status, state.placeable, state.last_seen) == (AgentStatus.LOST, False, 14.0)
    state = evolve_agent(state, AgentReturned(agent="ag1", at=40.0))
    assert state.placeable


def test_quarantine_holds_until_cleared() -> None:
    """A quarantined agent stays online but takes no new work until an operator clears it."""
    state = evolve_agent(initial_agent("ag1"), _registered())
    state = evolve_agent(
        state, AgentQuarantined(agent="ag1", at=20.0, reason="5 failures in a row")
    )
    assert state.status is AgentStatus.ONLINE
    assert not state.placeable
    assert state.quarantine_reason == "5 failures in a row"
    state = evolve_agent(state, AgentCleared(agent="ag1", at=21.0, by="ana"))
    assert state.placeable


def test_deregistered_agent_is_offline() -> None:
    """A clean shutdown takes the agent out of placement."""
    state = evolve_agent(initial_agent("ag1"), _registered())
    state = evolve_agent(state, AgentDeregistered(agent="ag1", at=50.0, reason="shutdown"))
    assert (state.status, state.placeable) == (AgentStatus.OFFLINE, False)


@given(st.lists(agent_events, max_size=20))
def test_fold_is_deterministic(history: list[Any]) -> None:
    """Folding the same agent events twice gives equal states."""

    def fold() -> Any:
        state = initial_agent("ag1")
        for event in history:
            state = evolve_agent(state, event)
        return state

    assert fold() == fold()
