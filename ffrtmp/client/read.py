"""What the faces read from the farm: folds of the log, one job's history, heartbeats.

Everything here folds the log with the same pure functions the scheduler uses
(``events.job.evolve``, ``events.agent.evolve_agent``), so what a face shows is what the log
says, with no second copy of the rules. Each fold reads only the subjects its purpose needs:
the agents' events are a few per node, while the jobs' grow with history, so nothing that
shows nodes reads a job event. Ids are resolved from the events stream's subjects (one
request), so any unique prefix of a job or agent id names it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

import msgspec
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from events.admit import read_event
from events.agent import AgentState, evolve_agent, initial_agent
from events.agent_events import AgentDeregistered, AgentRegistered
from events.base import AgentEventBase, JobEventBase
from events.codec import Decoded, decode_heartbeat
from events.errors import FfrtmpError, MalformedMessage
from events.ids import resolve_prefix
from events.job import JobState, evolve, initial
from events.job_events import JobEvent
from events.natserrors import FAILURES, unavailable
from events.subjects import SCHEDULER_WRITER, parse_job_subject
from events.work import Heartbeat
from ffrtmp.client.conn import Conn

IDLE_S: Final = 0.5  # how long a follow waits for the next event before it lets a view refresh


class FarmView(msgspec.Struct, kw_only=True):
    """Every job and agent as the log says, and when each job last changed."""

    jobs: dict[str, JobState] = {}
    agents: dict[str, AgentState] = {}
    changed_at: dict[str, float] = {}
    seq: int = 0  # the last event folded


def fold_into(view: FarmView, seq: int, event: Decoded) -> None:
    """Fold one event of the log into the view (a live view of everything: ``ffrtmp top``)."""
    view.seq = seq
    if isinstance(event, JobEventBase):
        view.jobs[event.job] = evolve(view.jobs.get(event.job) or initial(event.job), event)
        view.changed_at[event.job] = event.at
    elif isinstance(event, AgentEventBase):
        state = view.agents.get(event.agent) or initial_agent(event.agent)
        view.agents[event.agent] = evolve_agent(state, event)


async def fold_jobs(conn: Conn) -> dict[str, JobState]:
    """Only the jobs' events folded here: the fallback of a listing when no projector answers.

    It reads every job event in the log (a consumer, the fast bulk read), so it costs what the
    log's history costs; a reader that can ask a projector does so first.
    """
    jobs: dict[str, JobState] = {}
    async for _, event in conn.store.replay(subject=conn.subjects.all_job_events):
        if isinstance(event, JobEventBase):
            jobs[event.job] = evolve(jobs.get(event.job) or initial(event.job), event)
    return jobs


async def fold_agents(conn: Conn, agent: str | None = None) -> dict[str, AgentState]:
    """Only the agents' events (or one agent's) folded here, by direct get: no job event."""
    subject = conn.subjects.agent_event(agent) if agent else conn.subjects.all_agent_events
    agents: dict[str, AgentState] = {}
    for entry in await stored(conn, subject):
        if isinstance(entry.event, AgentEventBase):
            name = entry.event.agent
            agents[name] = evolve_agent(agents.get(name) or initial_agent(name), entry.event)
    return agents


async def _subjects(conn: Conn, pattern: str) -> list[str]:
    with unavailable(conn.where.url, "cannot list ids"):
        info = await conn.js.stream_info(conn.subjects.events_stream, subjects_filter=pattern)
    return list((info.state.subjects or {}).keys())


async def job_ids(conn: Conn) -> set[str]:
    """Every job id the log mentions."""
    found = await _subjects(conn, conn.subjects.all_job_events)
    return {subject.split(".")[3] for subject in found}


async def agent_ids(conn: Conn) -> set[str]:
    """Every agent id the log mentions."""
    found = await _subjects(conn, f"{conn.subjects.prefix}.evt.agent.*")
    return {subject.split(".")[3] for subject in found}


async def resolve_job(conn: Conn, typed: str) -> str:
    """The one job whose id starts with ``typed``; ambiguity lists the candidates."""
    return resolve_prefix(typed, await job_ids(conn), "job")


async def resolve_agent(conn: Conn, typed: str) -> str:
    """The one agent (node) whose id starts with ``typed``."""
    return resolve_prefix(typed, await agent_ids(conn), "node")


async def load_job(conn: Conn, job: str) -> tuple[JobState, list[tuple[int, JobEvent]]]:
    """One job's state and its events with their sequences."""
    loaded = await conn.store.load(job)
    events = [(seq, e) for seq, e in loaded.events if isinstance(e, JobEventBase)]
    state = initial(job)
    for _, event in events:
        state = evolve(state, event)
    return state, events


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One event as the log holds it: sequence, subject, who wrote it, the event."""

    seq: int
    subject: str
    writer: str
    event: Decoded


def writer_of(subject: str, event: Decoded) -> str:
    """Who wrote an event: a job event's subject names its writer; an agent's subject does not.

    On ``<prefix>.evt.agent.<agent>`` the agent writes its own (de)registration; what the
    scheduler observed or an operator asked (lost, returned, quarantined, removed) is the
    scheduler's, and carries the command or timer that caused it.
    """
    job_subject = parse_job_subject(subject)
    if job_subject is not None:
        return job_subject[1]  # an assignment (``…job.<job>.sched.<agent>``) is the scheduler's
    parts = subject.split(".")
    if len(parts) == 4 and parts[2] == "agent":
        own = isinstance(event, AgentRegistered | AgentDeregistered) and not (
            isinstance(event, AgentDeregistered) and event.reason.startswith("removed by")
        )
        return parts[3] if own else SCHEDULER_WRITER
    return "?"


def _entry(seq: int, subject: str, data: bytes) -> Entry:
    event = read_event(subject, data)
    return Entry(seq=seq, subject=subject, writer=writer_of(subject, event), event=event)


async def stored(conn: Conn, subject: str, from_seq: int = 1) -> list[Entry]:
    """The events on ``subject`` from ``from_seq`` as of now, by direct get: no consumer."""
    found = await conn.store.messages(subject, max(1, from_seq))
    return [_entry(seq, stored_on, data) for seq, stored_on, data in found]


async def entries(
    conn: Conn,
    subject: str,
    *,
    from_seq: int = 1,
    follow: bool = False,
    idle_s: float | None = None,
) -> AsyncIterator[Entry | None]:
    """Events on ``subject`` from ``from_seq`` with their subjects (an ordered consumer).

    Without ``follow`` it ends at the last matching event as of the call. With ``idle_s`` it
    yields None after that long without an event, so a live view can redraw.
    """
    end = None if follow else await last_on(conn, subject)
    if end is not None and end < from_seq:
        return
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, from_seq)
    )
    with unavailable(conn.where.url, "cannot read the log"):
        sub = await conn.js.subscribe(
            subject, stream=conn.subjects.events_stream, ordered_consumer=True, config=config
        )
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=idle_s or 5.0)
            except TimeoutError:
                if idle_s is None and not follow:
                    raise FfrtmpError("the log stopped answering mid-read; try again") from None
                yield None
                continue
            meta = msg.metadata
            yield _entry(meta.sequence.stream, msg.subject, msg.data)
            if end is not None and meta.sequence.stream >= end:
                return
    finally:
        with contextlib.suppress(*FAILURES, asyncio.CancelledError):
            await sub.unsubscribe()


async def last_on(conn: Conn, subject: str) -> int:
    """The sequence of the last event on ``subject`` (wildcards allowed), 0 when none."""
    with unavailable(conn.where.url, "cannot read the log"):
        try:
            msg = await conn.js.get_last_msg(conn.subjects.events_stream, subject, direct=True)
        except NotFoundError:  # acted on: no event on the subject yet
            return 0
    return int(msg.seq or 0)


async def heartbeat(conn: Conn, agent: str) -> Heartbeat | None:
    """The agent's last heartbeat, if it sent one within the heartbeat stream's max age."""
    with unavailable(conn.where.url, "cannot read heartbeats"):
        try:
            msg = await conn.js.get_last_msg(
                conn.subjects.heartbeat_stream, conn.subjects.heartbeat(agent), direct=True
            )
        except NotFoundError:  # acted on: no heartbeat within the stream's max age
            return None
    if not msg.data:
        return None
    try:
        return decode_heartbeat(msg.data)
    except MalformedMessage:
        return None


async def heartbeats(conn: Conn, agents: set[str]) -> dict[str, Heartbeat]:
    """The last heartbeat of each agent that has one."""
    beats = await asyncio.gather(*(heartbeat(conn, agent) for agent in sorted(agents)))
    return {beat.agent: beat for beat in beats if beat is not None}
