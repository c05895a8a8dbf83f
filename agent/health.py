"""The agent's own HTTP endpoints: ``/health``, ``/ready`` and ``/metrics`` (default port 9091).

``/health`` says the process answers. ``/ready`` says whether the agent can take work now: each
readiness check returns None when fine or the reason it is not (FFmpeg missing, output disk
nearly full, NATS disconnected), and the first reason comes back with a 503. ``/metrics`` is the
agent's own counters on a private Prometheus registry, read from ``AgentStats`` at scrape time
(the farm-wide figures come from the exporter, folded from the log), with ``process_*`` and
``ffrtmp_build_info``. The server runs in a thread
of its own so a scrape never waits on the event loop, and reads only plain counters.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Final, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from agent.preflight import MIN_FREE_BYTES, disk_problem
from agent.runtime_metrics import register_runtime
from agent.tally import AgentStats

DEFAULT_PORT: Final = 9091

Check = Callable[[], str | None]
"""A readiness check: None when fine, else why the agent cannot take work."""


class Observed(Protocol):
    """What the endpoints read of the agent service."""

    @property
    def stats(self) -> AgentStats:
        """Its counters."""
        ...

    @property
    def slots(self) -> int:
        """Its slots."""
        ...

    @property
    def free_slots(self) -> int:
        """Slots not held by an attempt."""
        ...

    @property
    def connected(self) -> bool:
        """Whether its NATS connection is up."""
        ...


def ffmpeg_check(ffmpeg: Path) -> Check:
    """Not ready when the FFmpeg binary is gone or no longer executable."""

    def check() -> str | None:
        if os.access(ffmpeg, os.X_OK):
            return None
        return f"FFmpeg at {ffmpeg} is missing or not executable"

    return check


def disk_check(directory: Path, min_free_bytes: int = MIN_FREE_BYTES) -> Check:
    """Not ready when the disk holding ``directory`` has less than ``min_free_bytes`` free."""
    return lambda: disk_problem(directory, min_free_bytes)


def nats_check(service: Observed) -> Check:
    """Not ready while the NATS connection is down."""

    def check() -> str | None:
        return None if service.connected else "NATS is not connected"

    return check


class AgentCollector(Collector):
    """The agent's counters as Prometheus metrics, read when scraped."""

    def __init__(self, service: Observed) -> None:
        """Read ``service`` on every scrape."""
        self._service = service

    def collect(self) -> Iterator[Metric]:
        """One family per figure; outcomes of attempts as one labelled counter."""
        stats, service = self._service.stats, self._service
        jobs = CounterMetricFamily(
            "ffrtmp_agent_jobs", "Attempts this agent ended, by outcome.", labels=["outcome"]
        )
        outcomes = {
            "completed": stats.completed,
            "failed": stats.failed,
            "canceled": stats.canceled,
            "dropped": stats.dropped,
            "refused": stats.refused,
        }
        for outcome, count in outcomes.items():
            jobs.add_metric([outcome], count)
        yield jobs
        yield CounterMetricFamily(
            "ffrtmp_agent_executions", "Attempts begun (Start stored).", value=stats.executions
        )
        yield CounterMetricFamily(
            "ffrtmp_agent_heartbeats", "Heartbeats sent.", value=stats.heartbeats
        )
        yield CounterMetricFamily(
            "ffrtmp_agent_malformed_messages",
            "Work messages that did not decode, set aside.",
            value=stats.malformed,
        )
        running = service.slots - service.free_slots
        yield GaugeMetricFamily("ffrtmp_agent_running_jobs", "Attempts running.", value=running)
        yield GaugeMetricFamily("ffrtmp_agent_slots", "Slots offered.", value=service.slots)
        yield GaugeMetricFamily("ffrtmp_agent_free_slots", "Slots free.", value=service.free_slots)


class HealthServer:
    """``/health``, ``/ready`` and ``/metrics`` over HTTP in a thread; ``port=0`` picks one."""

    def __init__(
        self,
        service: Observed,
        checks: Sequence[Check],
        *,
        host: str = "0.0.0.0",  # noqa: S104 -- probes and scrapers come from other machines
        port: int = DEFAULT_PORT,
    ) -> None:
        """Bind now (a port in use fails here, before the agent registers)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(AgentCollector(service))
        register_runtime(self.registry, "agent")
        self._checks = tuple(checks)
        self._http = ThreadingHTTPServer((host, port), _handler(self))
        self._http.daemon_threads = True
        self._thread = threading.Thread(
            target=self._http.serve_forever, name="agent-health", daemon=True
        )

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._http.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.server_close()

    def not_ready(self) -> str | None:
        """The first failing check's reason; None when the agent is ready."""
        for check in self._checks:
            reason = check()
            if reason is not None:
                return reason
        return None


def _handler(server: HealthServer) -> type[BaseHTTPRequestHandler]:
    """A request handler bound to ``server``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health":
                self._send(200, b"ok\n")
            elif path == "/ready":
                reason = server.not_ready()
                body = b"ready\n" if reason is None else f"not ready: {reason}\n".encode()
                self._send(200 if reason is None else 503, body)
            elif path == "/metrics":
                self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
            else:
                self._send(404, b"not found: try /health, /ready or /metrics\n")

        def _send(self, status: int, body: bytes, kind: str = "text/plain; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 -- stdlib name
            """Probes every few seconds would flood the log: say nothing."""

    return Handler
