"""The farm's nodes (agents) as the log and their heartbeats describe them, and their steering."""

from __future__ import annotations

import time
from typing import Final

import msgspec

from events.agent import DRAIN, AgentState
from events.commands import AgentCommandBase, ClearAgent, QuarantineAgent, RemoveAgent
from events.enums import HOLDING_STATUSES, AgentStatus
from events.errors import FfrtmpError
from events.work import Heartbeat
from ffrtmp.client.conn import Conn, command_id
from ffrtmp.client.read import (
    entries,
    fold_agents,
    fold_jobs,
    heartbeats,
    last_on,
    resolve_agent,
)
from ffrtmp.client.render import node_status

COMMAND_WAIT_S: Final = 5.0
"""How long a node command waits for the scheduler to record it."""


class NodeRow(msgspec.Struct, frozen=True, kw_only=True):
    """One node in ``nodes list|describe --output json``."""

    id: str
    status: str
    hostname: str
    cpu_model: str
    cpu_cores: int
    ram_bytes: int
    gpus: list[str]
    encoders: list[str]
    slots: int
    running: list[str]
    quarantine_reason: str
    last_heartbeat_at: float
    cpu_percent: float | None
    memory_used_bytes: int | None
    power_w: float | None
    heartbeat: Heartbeat | None


def node_row(state: AgentState, running: list[str], beat: Heartbeat | None) -> NodeRow:
    """A node as the log and its last heartbeat describe it; ``running``: the jobs it holds."""
    caps = state.capabilities
    return NodeRow(
        id=state.agent,
        status=node_status(state, len(running)),
        hostname=caps.hostname if caps else "",
        cpu_model=caps.cpu_model if caps else "",
        cpu_cores=caps.cpu_cores if caps else 0,
        ram_bytes=caps.ram_bytes if caps else 0,
        gpus=[f"{g.index}: {g.name}" for g in caps.gpus] if caps else [],
        encoders=list(caps.encoders) if caps else [],
        slots=state.slots,
        running=running,
        quarantine_reason=state.quarantine_reason,
        last_heartbeat_at=beat.at if beat else 0.0,
        cpu_percent=beat.cpu_percent if beat else None,
        memory_used_bytes=beat.memory_used_bytes if beat else None,
        power_w=beat.power_w if beat else None,
        heartbeat=beat,
    )


class Node(msgspec.Struct, frozen=True, kw_only=True):
    """A node's row and the state its events fold to (``nodes describe`` shows both)."""

    row: NodeRow
    state: AgentState


async def nodes(conn: Conn) -> list[Node]:
    """Every node the log knows, sorted by id, read without one job event when a projector answers.

    The nodes come from the agents' events alone; the jobs each holds from the projector's
    ``jobs`` table (behind the log by its lag), or from the jobs folded here when no projector
    answers. A page that polls the nodes then costs the same whatever the length of the log.
    """
    agents = await fold_agents(conn)
    held = await held_jobs(conn)
    beats = await heartbeats(conn, set(agents))
    return [
        Node(row=node_row(state, held.get(agent, []), beats.get(agent)), state=state)
        for agent, state in sorted(agents.items())
    ]


async def node_list(conn: Conn) -> list[NodeRow]:
    """Every node's row, as ``nodes`` reads them."""
    return [node.row for node in await nodes(conn)]


async def held_jobs(conn: Conn) -> dict[str, list[str]]:
    """The jobs each agent holds (assigned, running, paused), sorted: a projector's, else folded."""
    from projections.service import MAX_ROW_LIMIT, NoProjector, ask  # noqa: PLC0415 -- DuckDB

    statuses = sorted(str(s) for s in HOLDING_STATUSES)
    sql = f"SELECT agent, job FROM jobs WHERE status IN ({', '.join('?' * len(statuses))})"  # noqa: S608 -- placeholders only
    try:
        reply = await ask(conn.nc, conn.subjects, sql, statuses, limit=MAX_ROW_LIMIT)
    except NoProjector:
        pairs = [
            (state.agent, job)
            for job, state in (await fold_jobs(conn)).items()
            if state.status in HOLDING_STATUSES
        ]
    else:
        rows = reply.result.rows if reply.result else []
        pairs = [(str(agent), str(job)) for agent, job in rows]
    held: dict[str, list[str]] = {}
    for agent, job in sorted(pairs):
        held.setdefault(agent, []).append(job)
    return held


def drain_reason(by: str) -> str:
    """The quarantine reason that makes a drain (``events.agent.DRAIN``), naming who asked."""
    return f"{DRAIN}: no new work, running jobs finish (by {by})"


async def steer_node(
    conn: Conn,
    typed: str,
    make: type[QuarantineAgent | ClearAgent | RemoveAgent],
    reason: str,
    *,
    by: str,
    force: bool = False,
) -> str:
    """Send a drain, quarantine, clear or remove to a node; one line on what became of it."""
    agent = await resolve_agent(conn, typed)
    state = (await fold_agents(conn, agent))[agent]
    beats = await heartbeats(conn, {agent})
    already = _already(make, state, reason, force=force, beat=beats.get(agent))
    if already:
        return f"node {agent}: {already}"
    command = _build(make, agent, reason, by)
    after = await last_on(conn, conn.subjects.agent_event(agent))
    await conn.send(command)
    if await _await_event(conn, agent, command.id, after, COMMAND_WAIT_S):
        return f"node {agent}: {_done(make, reason)}"
    return f"node {agent}: sent; no scheduler has recorded it yet (is one running?)"


async def _await_event(conn: Conn, agent: str, cause: str, after: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    subject = conn.subjects.agent_event(agent)
    async for entry in entries(conn, subject, from_seq=after + 1, follow=True, idle_s=0.2):
        if entry is not None and getattr(entry.event, "cause", "") == cause:
            return True
        if time.monotonic() > deadline:
            return False
    return False  # pragma: no cover -- a follow only ends by returning above


def _build(
    make: type[QuarantineAgent | ClearAgent | RemoveAgent], agent: str, reason: str, by: str
) -> AgentCommandBase:
    at, ident = time.time(), command_id()
    if make is QuarantineAgent:
        return QuarantineAgent(id=ident, agent=agent, at=at, by=by, reason=reason)
    if make is RemoveAgent:
        return RemoveAgent(id=ident, agent=agent, at=at, by=by, reason=reason)
    return ClearAgent(id=ident, agent=agent, at=at, by=by)


def _already(
    make: type[AgentCommandBase], state: AgentState, reason: str, *, force: bool,
    beat: Heartbeat | None,
) -> str:  # fmt: skip
    if make is QuarantineAgent and state.quarantined:
        return f"already {'draining' if reason.startswith(DRAIN) else 'quarantined'}: " + (
            state.quarantine_reason
        )
    if make is ClearAgent and not state.quarantined:
        return "not quarantined or draining; nothing to clear"
    if make is RemoveAgent and state.status is AgentStatus.OFFLINE:
        return "already removed (offline)"
    if make is RemoveAgent and not force and beat is not None and time.time() - beat.at < 30:
        raise FfrtmpError(
            f"node {state.agent} is alive (heartbeat {time.time() - beat.at:.0f}s ago): "
            "drain it and stop its agent first, or pass --force"
        )
    return ""


def _done(make: type[AgentCommandBase], reason: str) -> str:
    if make is ClearAgent:
        return "cleared; it takes new work"
    if make is RemoveAgent:
        return "removed; the jobs it held retry elsewhere"
    if reason.startswith(DRAIN):
        return "draining: no new work, running jobs finish (`ffrtmp nodes clear` undoes it)"
    return f"quarantined: {reason}"
