"""Send a command and wait for the scheduler's decision: the events it caused, or who should.

The scheduler answers a command with the events whose ``cause`` is the command's id (a refusal
is a ``CommandRefused``); a submit is answered with exactly one. A submit the leader decided
directly (``client.submit``) has that event in the log before ``send`` returns, so the first
read finds it. No answer within the wait is no failure: the command is stored, and
``undecided`` says whether a scheduler will decide it.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final

import msgspec

from events.base import JobEventBase
from events.commands import OperatorCommandBase, SubmitJob
from events.job import JobState, evolve, initial, is_terminal
from events.job_events import CommandRefused, JobEvent
from events.natserrors import FAILURES
from ffrtmp.client.conn import Conn
from ffrtmp.client.read import stored
from ffrtmp.client.render import detail, event_type, failure
from ffrtmp.scheduler.lease import LEADER_KEY

DECISION_WAIT_S: Final = 5.0
"""How long a command waits for the scheduler's answer by default."""
QUIET_S: Final = 0.2
"""After a command's first event, how long the job must be quiet for its answer to be whole."""
_FIRST_PAUSE_S: Final = 0.002
_MAX_PAUSE_S: Final = 0.02


async def scheduler_leads(conn: Conn) -> bool:
    """Whether a scheduler holds the lease (its key in the lease bucket is alive)."""
    try:
        kv = await conn.js.key_value(conn.subjects.lease_bucket)
        await kv.get(LEADER_KEY)
    except FAILURES:  # no lease bucket, no key, or no answer: nobody leads that we can see
        return False
    return True


class Decided(msgspec.Struct, frozen=True, kw_only=True):
    """What ``jobs <verb> --output json`` prints: the command and the decision, if one came."""

    job: str
    command: str
    command_id: str
    decided: bool
    refused: bool = False
    status: str = ""
    events: list[str] = []
    message: str = ""


async def decision(
    conn: Conn, job: str, cause: str, wait_s: float, *, submit_after: int | None = None
) -> tuple[JobState, list[JobEvent]] | None:
    """The job's state and the events its command produced, once they land; None on timeout.

    A command can be followed by more events of its cause (a pause asked of a running job is
    answered by the agent's ``JobPaused``), so the wait lasts until the job is quiet for a
    moment. A submit is answered with exactly one event, after ``submit_after`` (the log's last
    sequence when it was sent): the read starts there, not at the stream's first sequence, whose
    cost grows with the log, and ends at that event.

    The job's subject is read by direct get, polled with a doubling pause (2 ms to 20 ms): a
    consumer per wait would outlive it on the server for seconds, and an API deciding hundreds
    of commands a second would reach the stream's limit of 1,000 consumers.
    """
    state = initial(job)
    produced: list[JobEvent] = []
    now = time.monotonic()
    deadline, last_news = now + wait_s, now
    start = 1 if submit_after is None else submit_after + 1
    subject = conn.subjects.job_events(job)
    pause = _FIRST_PAUSE_S
    while True:
        found = await stored(conn, subject, start)
        for entry in found:
            start = entry.seq + 1
            if not isinstance(entry.event, JobEventBase):
                continue
            state = evolve(state, entry.event)
            if entry.event.cause == cause:
                produced.append(entry.event)
                if submit_after is not None:
                    return state, produced
        now = time.monotonic()
        if found:
            last_news, pause = now, _FIRST_PAUSE_S
        elif produced and now - last_news >= QUIET_S:
            return state, produced
        if now > deadline:
            return (state, produced) if produced else None
        await asyncio.sleep(pause)  # polling the log: the next event, or the deadline
        pause = min(pause * 2, _MAX_PAUSE_S)


async def undecided(conn: Conn, wait_s: float) -> str:
    """What is true of a command stored but not decided: who, if anyone, should decide it."""
    waited = f"no scheduler answered within {wait_s:g} s"
    if await scheduler_leads(conn):
        return f"command stored; {waited}, though one holds the lease (busy?): it will decide it"
    return (
        f"command stored; {waited} and none holds the lease: it waits for one "
        "(`ffrtmp up`, or `ffrtmp scheduler run`)"
    )


async def send_and_report(
    conn: Conn, command: OperatorCommandBase, wait_s: float = DECISION_WAIT_S
) -> Decided:
    """Send a command about a job and report the decision (the caller resolved the id)."""
    decided, _ = await send_and_decide(conn, command, wait_s)
    return decided


async def send_and_decide(
    conn: Conn, command: OperatorCommandBase, wait_s: float = DECISION_WAIT_S
) -> tuple[Decided, JobState | None]:
    """The decision, and the job's state after it; None while undecided.

    For a submit the state is the whole job's: its one event is the job's first.
    """
    after = await conn.store.last_seq() if isinstance(command, SubmitJob) else None
    await conn.send(command)
    outcome = (
        await decision(conn, command.job, command.id, wait_s, submit_after=after)
        if wait_s > 0
        else None
    )
    name = type(command).__name__
    if outcome is None:
        return Decided(
            job=command.job,
            command=name,
            command_id=command.id,
            decided=False,
            message=await undecided(conn, wait_s),
        ), None
    state, produced = outcome
    refusal = next((e for e in produced if isinstance(e, CommandRefused)), None)
    message = refusal.reason if refusal else "; ".join(filter(None, map(detail, produced)))
    if refusal is None and is_terminal(state) and failure(state):
        message = failure(state)
    return Decided(
        job=command.job,
        command=name,
        command_id=command.id,
        decided=True,
        refused=refusal is not None,
        status=str(state.status),
        events=[event_type(e) for e in produced],
        message=message,
    ), state
