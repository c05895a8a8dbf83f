"""One job as the log says it is, was, and became: its status, its history, its FFmpeg log.

Each answer is a struct whose JSON is documented (docs/api.md): ``jobs status|history -o json``
and the HTTP API print the same documents.
"""

from __future__ import annotations

import msgspec

from agent.logs import command_of, read_log
from events.base import JobEventBase
from events.errors import FfrtmpError
from events.job import JobState, evolve, initial, is_terminal
from events.job_events import JobEvent
from events.work import RunningJob
from ffrtmp.client.conn import Conn
from ffrtmp.client.follow import live_of
from ffrtmp.client.read import Entry, heartbeat, load_job, stored
from ffrtmp.client.render import changes, detail, event_type


class NotRunYet(FfrtmpError):
    """The job has had no attempt, so it has no log."""


class StatusJson(msgspec.Struct, frozen=True, kw_only=True):
    """``jobs status --output json``: the folded state, live telemetry, the log position."""

    job: JobState
    live: RunningJob | None
    seq: int
    command: str = ""  # the latest attempt's exact command line, from its log


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One event of ``jobs history --output json``."""

    seq: int
    at: float
    writer: str
    type: str
    changes: str
    detail: str
    event: JobEvent


class JobLog(msgspec.Struct, frozen=True, kw_only=True):
    """``jobs logs --output json``: one attempt's FFmpeg output as the agent kept it."""

    job: str
    attempt: int
    log: str


async def command_line(conn: Conn, state: JobState) -> str:
    """The command line the job's latest attempt runs (or ran); empty when none is stored."""
    if state.attempt < 1:
        return ""
    try:
        return command_of(await read_log(conn.js, conn.subjects, state.job, state.attempt))
    except FfrtmpError:
        return ""


async def job_status(
    conn: Conn, job: str, *, upto_seq: int | None = None, upto_time: float | None = None
) -> StatusJson:
    """The job now (with its live progress and command line), or as of a sequence or time."""
    state, events = await load_job(conn, job)
    seq = events[-1][0] if events else 0
    if upto_seq is not None or upto_time is not None:
        state, seq = initial(job), 0
        for event_seq, event in events:
            if (upto_seq is not None and event_seq > upto_seq) or (
                upto_time is not None and event.at > upto_time
            ):
                break
            state, seq = evolve(state, event), event_seq
        return StatusJson(job=state, live=None, seq=seq)
    live = None
    if state.agent and not is_terminal(state):
        live = live_of(await heartbeat(conn, state.agent), state)
    return StatusJson(job=state, live=live, seq=seq, command=await command_line(conn, state))


async def job_history(conn: Conn, job: str) -> list[HistoryEntry]:
    """Every event of the job with its writer and what it changed, oldest first."""
    state = initial(job)
    found = []
    for entry in await stored(conn, conn.subjects.job_events(job)):
        if not isinstance(entry.event, JobEventBase):
            continue
        before, state = state, evolve(state, entry.event)
        found.append(history_entry(entry, entry.event, before, state))
    return found


def history_entry(entry: Entry, event: JobEvent, before: JobState, after: JobState) -> HistoryEntry:
    """One event (``entry``'s) of a job's history: who wrote it, what it changed from ``before``."""
    return HistoryEntry(
        seq=entry.seq,
        at=event.at,
        writer=entry.writer,
        type=event_type(event),
        changes=changes(before, after),
        detail=detail(event),
        event=event,
    )


async def job_log(conn: Conn, job: str, attempt: int | None = None) -> JobLog:
    """One attempt's log (the latest by default); a job that has not run is one line."""
    state, _ = await load_job(conn, job)
    chosen = attempt or state.attempt
    if chosen < 1:
        raise NotRunYet(f"job {job} has not run yet ({state.status}); no log to show")
    text = await read_log(conn.js, conn.subjects, job, chosen)
    return JobLog(job=job, attempt=chosen, log=text.decode(errors="replace"))
