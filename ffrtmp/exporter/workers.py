"""Per-worker gauges from heartbeats: the latest telemetry of each agent, and the follower.

Heartbeats are not in the event log: ``<PREFIX>_HB`` keeps the last one per agent for an hour.
``WorkerBoard`` is the pure part (a heartbeat in, the board's rows out; the clock is an
argument); ``follow_heartbeats`` is the I/O edge, reading the heartbeat stream from its start
(so a restarted exporter sees every agent's last heartbeat at once) and on as agents publish.
A heartbeat that does not decode is logged, counted and skipped: the follower keeps going.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import msgspec
from nats.aio.client import Client as NatsClient

from events.codec import decode_heartbeat
from events.errors import MalformedMessage
from events.reader import read_forever
from events.streams import HEARTBEAT_MAX_AGE_S
from events.subjects import Subjects
from events.work import Heartbeat

_log = logging.getLogger(__name__)


STALE_AFTER_S: Final = 30.0
"""A heartbeat older than this no longer stands for the agent's load (it stopped sending)."""


class Worker(msgspec.Struct, frozen=True, kw_only=True):
    """One agent's latest heartbeat and how many the exporter has seen from it."""

    last: Heartbeat
    heartbeats: int
    fresh: bool = True  # heard within the board's ``stale_after_s``: its telemetry is current


class WorkerBoard:
    """The latest heartbeat per agent; agents silent past ``max_age_s`` leave the board.

    An agent silent past ``stale_after_s`` stays on the board (its last heartbeat time is what
    an alert on a silent agent reads) but is no longer ``fresh``: its last load is not its load.
    """

    def __init__(
        self, max_age_s: float = HEARTBEAT_MAX_AGE_S, stale_after_s: float = STALE_AFTER_S
    ) -> None:
        """An empty board."""
        self.max_age_s = max_age_s
        self.stale_after_s = stale_after_s
        self._workers: dict[str, Worker] = {}
        self.malformed = 0

    def heard(self, beat: Heartbeat) -> None:
        """Record a heartbeat; an older one than the agent's last only counts."""
        known = self._workers.get(beat.agent)
        if known is None:
            self._workers[beat.agent] = Worker(last=beat, heartbeats=1)
            return
        last = beat if beat.at >= known.last.at else known.last
        self._workers[beat.agent] = Worker(last=last, heartbeats=known.heartbeats + 1)

    def take(self, data: bytes, subject: str = "") -> Heartbeat | None:
        """Decode and record a heartbeat; a malformed one is counted, logged and skipped."""
        try:
            beat = decode_heartbeat(data)
        except MalformedMessage as exc:
            self.malformed += 1
            _log.warning("heartbeat %s skipped: %s", subject or "?", exc.reason)
            return None
        self.heard(beat)
        return beat

    def workers(self, now: float) -> list[Worker]:
        """Agents heard from within ``max_age_s`` of ``now``, by name."""
        live = {
            agent: worker
            for agent, worker in self._workers.items()
            if now - worker.last.at <= self.max_age_s
        }
        self._workers = live
        return [
            msgspec.structs.replace(
                live[agent], fresh=now - live[agent].last.at <= self.stale_after_s
            )
            for agent in sorted(live)
        ]


async def follow_heartbeats(
    nc: NatsClient,
    subjects: Subjects,
    board: WorkerBoard,
    on_beat: Callable[[], None] | None = None,
) -> None:
    """Feed every heartbeat on the stream into ``board``, from the oldest kept; never returns."""
    stream = subjects.heartbeat_stream
    async for _seq, _subject, data in read_forever(nc, stream, subjects.all_heartbeats):
        board.take(data, stream)
        if on_beat is not None:
            on_beat()
