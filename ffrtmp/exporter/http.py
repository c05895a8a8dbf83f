"""A minimal HTTP/1.1 endpoint on asyncio: ``GET /metrics`` and nothing else.

prometheus-client's own server runs in a thread, which would read the projection while the
event loop writes it. Serving from the loop keeps one thread: a scrape runs between two batches
of the log, never during one. Each connection carries one request and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from events.errors import FfrtmpError

_log = logging.getLogger(__name__)

METRICS_PATH: Final = "/metrics"
_READ_TIMEOUT_S: Final = 10.0
_MAX_HEADER_LINES: Final = 100

Render = Callable[[], Awaitable[bytes]]


async def serve(render: Render, host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port`` (0: any free port); ``render`` answers each scrape."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(_READ_TIMEOUT_S):
                path = await _request_path(reader)
            status, body, kind = await _answer(path, render)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError) as exc:
            _log.debug("scrape connection dropped: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)


async def _request_path(reader: asyncio.StreamReader) -> str:
    """The path of a GET request; its headers are read and ignored."""
    method, path, *_ = (await reader.readline()).decode("latin-1").split()
    for _ in range(_MAX_HEADER_LINES):
        if (await reader.readline()) in {b"\r\n", b"\n", b""}:
            break
    return path if method in {"GET", "HEAD"} else ""


async def _answer(path: str, render: Render) -> tuple[str, bytes, str]:
    if path.split("?", 1)[0] == METRICS_PATH:
        try:
            return "200 OK", await render(), CONTENT_TYPE_LATEST
        except FfrtmpError as exc:
            _log.exception("scrape failed")
            return "500 Internal Server Error", f"scrape failed: {exc}\n".encode(), "text/plain"
    return "404 Not Found", b"ffrtmp exporter: metrics are at /metrics\n", "text/plain"


def bound_port(server: asyncio.Server) -> int:
    """The port a server listens on (the kernel's pick when asked for 0)."""
    return int(server.sockets[0].getsockname()[1])
