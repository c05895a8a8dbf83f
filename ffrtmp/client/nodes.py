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
    FarmView,
    entries,
    fold_agents,
    fold_log,
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


def _held(view: FarmView, agent: str) -> list[str]:
    return sorted(
        job
        for job, state in view.jobs.items()
        if state.agent == agent and state.status in HOLDING_STATUSES
    )


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


async def node_rows(conn: Conn) -> tuple[FarmView, list[NodeRow]]:
    """Every node the log knows, sorted by id, and the folded log they were read from."""
    view = await fold_log(conn)
    beats = await heartbeats(conn, set(view.agents))
    rows = [node_row(s, _held(view, a), beats.get(a)) for a, s in sorted(view.agents.items())]
    return view, rows


async def node_list(conn: Conn) -> list[NodeRow]:
    """Every node, as ``node_rows`` says, without folding the jobs when a projector answers.

    The nodes come from the agents' events alone; the jobs each holds from the projector's
    ``jobs`` table (behind the log by its lag). A page that polls the nodes then costs the same
    whatever the length of the log.
    """
    from projections.service import MAX_ROW_LIMIT, NoProjector, ask  # noqa: PLC0415 -- DuckDB

    statuses = sorted(str(s) for s in HOLDING_STATUSES)
    sql = f"SELECT agent, job FROM jobs WHERE status IN ({', '.join('?' * len(statuses))})"  # noqa: S608 -- placeholders only
    try:
        reply = await ask(conn.nc, conn.subjects, sql, statuses, limit=MAX_ROW_LIMIT)
    except NoProjector:
        _, rows = await node_rows(conn)
        return rows
    held: dict[str, list[str]] = {}
    for agent, job in reply.result.rows if reply.result else []:
        held.setdefault(str(agent), []).append(str(job))
    view = await fold_agents(conn)
    beats = await heartbeats(conn, set(view.agents))
    return [
        node_row(state, sorted(held.get(agent, [])), beats.get(agent))
        for agent, state in sorted(view.agents.items())
    ]


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
    view = await fold_log(conn)
    state = view.agents[agent]
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
