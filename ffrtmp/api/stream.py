"""A job followed live for a server-sent event stream: its history, then each change, then its end.

Every event of the job is sent as ``history`` (oldest first, its log sequence as the SSE id);
the state with its live progress as ``status`` whenever either changed (progress comes from the
holding agent's heartbeat, looked at while no event arrives); ``end`` once the job has ended.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import msgspec

from events.base import JobEventBase
from events.enums import STARTED_STATUSES
from events.job import evolve, initial, is_terminal
from ffrtmp.client.conn import Conn
from ffrtmp.client.follow import live_of
from ffrtmp.client.jobs import StatusJson, history_entry
from ffrtmp.client.read import entries, heartbeat

IDLE_S: Final = 0.5
"""How long without an event before progress is looked at again."""


async def follow(conn: Conn, job: str) -> AsyncIterator[tuple[str, int, msgspec.Struct]]:
    """``(event name, seq, document)`` for the job's stream, until it has ended."""
    state, seq, sent = initial(job), 0, b""
    async for entry in entries(conn, conn.subjects.job_events(job), follow=True, idle_s=IDLE_S):
        if entry is not None and isinstance(entry.event, JobEventBase):
            before, state, seq = state, evolve(state, entry.event), entry.seq
            yield "history", seq, history_entry(entry, entry.event, before, state)
        if entry is not None and not is_terminal(state):
            continue  # catching up: the status follows once the log is read
        live = None
        if state.agent and state.status in STARTED_STATUSES:
            live = live_of(await heartbeat(conn, state.agent), state)
        status = StatusJson(job=state, live=live, seq=seq)
        encoded = msgspec.json.encode(status)
        if encoded != sent:
            sent = encoded
            yield "status", seq, status
        if is_terminal(state):
            yield "end", seq, status
            return
