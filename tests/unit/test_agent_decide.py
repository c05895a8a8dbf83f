"""The agent decider: operators' commands and the scheduler's observations; refusals: none."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.agent import AgentState, decide_agent, evolve_agent, initial_agent
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
    ClearAgent,
    DeclareLost,
    DeclareReturned,
    QuarantineAgent,
    QuarantineFaulty,
    RemoveAgent,
)
from events.enums import AgentStatus
from tests.strategies import agent_events

NOW = 100.0
ONLINE = evolve_agent(
    initial_agent("a1"),
    AgentRegistered(agent="a1", at=1.0, capabilities=Capabilities(), slots=2),
)
QUARANTINED = msgspec.structs.replace(ONLINE, quarantined=True, quarantine_reason="bad RAM")
LOST = msgspec.structs.replace(ONLINE, status=AgentStatus.LOST)
OFFLINE = msgspec.structs.replace(ONLINE, status=AgentStatus.OFFLINE)


def quarantine(reason: str = "", by: str = "") -> QuarantineAgent:
    """An operator's quarantine of a1."""
    return QuarantineAgent(id="q1", agent="a1", at=NOW, reason=reason, by=by)


def remove(reason: str = "", by: str = "") -> RemoveAgent:
    """An operator's removal of a1."""
    return RemoveAgent(id="r1", agent="a1", at=NOW, reason=reason, by=by)


CLEAR = ClearAgent(id="c1", agent="a1", at=NOW, by="ana")
FAULTY = QuarantineFaulty(failures=3, completed_elsewhere=7)
STREAK_REASON = "3 jobs failed in a row on this agent while 7 completed elsewhere"


@pytest.mark.parametrize(
    ("state", "command", "expected"),
    [
        (
            ONLINE,
            quarantine("bad RAM", "ana"),
            AgentQuarantined(agent="a1", at=NOW, cause="c", by="ana", reason="bad RAM"),
        ),
        (
            ONLINE,
            quarantine(),
            AgentQuarantined(agent="a1", at=NOW, cause="c", reason="quarantined by an operator"),
        ),
        (QUARANTINED, CLEAR, AgentCleared(agent="a1", at=NOW, cause="c", by="ana")),
        (
            ONLINE,
            remove(by="ops"),
            AgentDeregistered(agent="a1", at=NOW, cause="c", reason="removed by ops"),
        ),
        (
            LOST,
            remove(),
            AgentDeregistered(agent="a1", at=NOW, cause="c", reason="removed by an operator"),
        ),
        (
            ONLINE,
            DeclareLost(last_seen=42.0),
            AgentLost(agent="a1", at=NOW, cause="c", last_seen=42.0),
        ),
        (LOST, DeclareReturned(), AgentReturned(agent="a1", at=NOW, cause="c")),
        (ONLINE, DeclareReturned(), AgentReturned(agent="a1", at=NOW, cause="c")),
        (ONLINE, FAULTY, AgentQuarantined(agent="a1", at=NOW, cause="c", reason=STREAK_REASON)),
    ],
)
def test_a_command_that_applies_is_one_event(
    state: AgentState, command: AgentCommand, expected: AgentEvent
) -> None:
    """Each command that applies to the agent's state is recorded as the one event it means."""
    assert decide_agent(state, command, NOW, "c") == [expected]


@pytest.mark.parametrize(
    ("state", "command"),
    [
        (QUARANTINED, quarantine()),
        (ONLINE, CLEAR),
        (OFFLINE, remove()),
        (LOST, DeclareLost(last_seen=1.0)),
        (OFFLINE, DeclareLost(last_seen=1.0)),
        (initial_agent("a1"), DeclareLost(last_seen=1.0)),
        (QUARANTINED, FAULTY),
    ],
)
def test_a_command_the_agent_is_past_yields_nothing(
    state: AgentState, command: AgentCommand
) -> None:
    """Quarantining twice, clearing a healthy agent, declaring lost an agent not online: none."""
    assert decide_agent(state, command, NOW, "c") == []


COMMANDS = st.sampled_from(
    [quarantine(), CLEAR, remove(), DeclareLost(last_seen=1.0), DeclareReturned(), FAULTY]
)


@given(st.lists(agent_events, max_size=8), COMMANDS)
def test_deciding_again_after_folding_the_decision_yields_nothing(
    history: list[AgentEvent], command: AgentCommand
) -> None:
    """Whatever the agent's history, a decision folded in makes the same command a no-op.

    A return is recorded as observed whatever the state, so it is the one exception.
    """
    state = initial_agent("a1")
    for event in history:
        state = evolve_agent(state, event)
    events = decide_agent(state, command, NOW, "c")
    assert len(events) <= 1
    for event in events:
        state = evolve_agent(state, event)
    if not isinstance(command, DeclareReturned):
        assert decide_agent(state, command, NOW, "c") == []
