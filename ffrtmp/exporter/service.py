"""The exporter service: its projection follows the log, its board follows heartbeats, it serves.

Three tasks on one event loop: the log view applies every event of the log to the exporter's
own projection, the heartbeat follower keeps the latest telemetry per agent, and the HTTP
endpoint answers scrapes. A scrape first reads the log's last sequence, the scheduler lease and
the dead letters stored since the last scrape (so the lag, the scheduler's uptime and the dead
letters are as of the scrape), then renders the collector on a private registry. Everything runs
in the loop's thread, so a scrape never reads the projection half-way through a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

import msgspec
from nats.js.errors import NotFoundError
from prometheus_client import CollectorRegistry, generate_latest

from agent.runtime_metrics import register_runtime
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.natserrors import FAILURES
from events.streams import HEARTBEAT_MAX_AGE_S
from ffrtmp.exporter.collector import FfrtmpCollector
from ffrtmp.exporter.deadletters import DeadLetterTally
from ffrtmp.exporter.figures import Health, LogFigures
from ffrtmp.exporter.http import bound_port, serve
from ffrtmp.exporter.projection import ProjectionView, database
from ffrtmp.exporter.workers import STALE_AFTER_S, Worker, WorkerBoard, follow_heartbeats
from ffrtmp.scheduler.lease import LEADER_KEY, Claim
from projections import Projector

_log = logging.getLogger(__name__)


class ExporterSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the exporter listens and keeps its projection; defaults in the README."""

    host: str = "0.0.0.0"  # noqa: S104 -- Prometheus scrapes from another container
    port: int = 9090
    data_dir: str | None = None  # None: the projection lives in memory, rebuilt on start
    worker_max_age_s: float = HEARTBEAT_MAX_AGE_S  # a silent agent's gauges go after this
    worker_stale_after_s: float = STALE_AFTER_S  # a silent agent's load gauges go after this


class LogView(Protocol):
    """The exporter's projection of the log: it follows the store and answers with figures."""

    @property
    def position(self) -> int:
        """The last stream sequence applied."""
        ...

    def figures(self) -> LogFigures:
        """The figures as of ``position``."""
        ...

    async def follow(self, store: JetStreamEventStore) -> None:
        """Apply the log from ``position + 1`` on; never returns."""
        ...

    def close(self) -> None:
        """Let go of what the view holds (a database)."""
        ...


class Exporter:
    """One exporter process; ``run`` until cancelled, ``scrape`` for the exposition text."""

    def __init__(
        self,
        store: JetStreamEventStore,
        settings: ExporterSettings | None = None,
        *,
        view: LogView | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Export ``store``'s log through ``view`` (default: a DuckDB projection of its own)."""
        self.store = store
        self.settings = settings or ExporterSettings()
        self.view: LogView = view or ProjectionView(
            Projector(database(self.settings.data_dir), prefix=store.subjects.prefix)
        )
        self.board = WorkerBoard(self.settings.worker_max_age_s, self.settings.worker_stale_after_s)
        self.clock = clock
        self.listening = asyncio.Event()
        self.port = 0
        self._started = time.monotonic()
        self._last_seq = 0
        self.lag_events = 0  # events the projection had not applied at the last scrape
        self._behind_since: float | None = None
        self._scheduler_uptime: float | None = None
        self.dead_letters = DeadLetterTally(store.subjects)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(FfrtmpCollector(self.view.figures, self._workers, self._health))
        register_runtime(self.registry, "exporter")

    async def run(self) -> None:
        """Follow the log and the heartbeats and serve scrapes until cancelled."""
        host, port = self.settings.host, self.settings.port
        try:
            server = await serve(self.scrape, host, port)
        except OSError as exc:
            raise FfrtmpError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "choose another --metrics-port"
            ) from exc
        self.port = bound_port(server)
        self.listening.set()
        try:
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(self.view.follow(self.store), name="log")
                tasks.create_task(
                    follow_heartbeats(self.store.nc, self.store.subjects, self.board),
                    name="heartbeats",
                )
        finally:
            server.close()
            self.view.close()

    async def scrape(self) -> bytes:
        """The exposition text as of now."""
        await self.refresh()
        return generate_latest(self.registry)

    async def refresh(self) -> None:
        """Read what the scrape reports as of now: the log's end and the scheduler's lease.

        The lag is fixed here, before the figures are read: the projection only moves on, so
        figures read after a lag of 0 include every event the log held at this point.
        """
        with contextlib.suppress(FfrtmpError):
            self._last_seq = await self.store.last_seq()
        self._scheduler_uptime = await self._leader_uptime()
        await self.dead_letters.refresh(self.store.nc)
        self.lag_events = max(0, self._last_seq - self.view.position)
        if self.lag_events == 0:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = time.monotonic()

    def _health(self) -> Health:
        since = self._behind_since
        return Health(
            lag_events=self.lag_events,
            lag_s=0.0 if since is None else time.monotonic() - since,
            uptime_s=time.monotonic() - self._started,
            malformed_heartbeats=self.board.malformed,
            scheduler_uptime_s=self._scheduler_uptime,
            dead_letters=self.dead_letters.counts(),
        )

    def _workers(self) -> list[Worker]:
        return self.board.workers(self.clock())

    async def _leader_uptime(self) -> float | None:
        """How long the current leader has held the lease; None when nobody holds it."""
        js = self.store.nc.jetstream()
        try:
            kv = await js.key_value(self.store.subjects.lease_bucket)
            entry = await kv.get(LEADER_KEY)
            claim = msgspec.json.decode(entry.value or b"", type=Claim)
        except NotFoundError:  # acted on: no lease bucket or key yet, so nobody leads
            return None
        except (*FAILURES, msgspec.DecodeError, RecursionError) as exc:
            _log.debug("scheduler lease unreadable: %s", exc)
            return None
        return max(0.0, self.clock() - claim.acquired_at)
