"""Starting a nats-server that the plain readiness poll cannot reach (users, TLS).

``NatsServer.wait_ready`` connects without credentials or TLS; a secured server refuses that.
Here readiness is the test's own ``connect`` succeeding, and the streams are created through it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from events.streams import ensure_streams
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer

Connect = Callable[[], Awaitable[NatsClient]]


def start_secured(server: NatsServer, connect: Connect, subjects: Subjects) -> None:
    """Spawn the server, wait until ``connect`` works, create the prefix's streams with it."""
    server.spawn()
    asyncio.run(_ready(connect, subjects))


async def _ready(connect: Connect, subjects: Subjects, deadline_s: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            nc = await connect()
        except (OSError, NatsError, TimeoutError):
            assert time.monotonic() < deadline, "the secured nats-server never came up"
            await asyncio.sleep(0.05)
            continue
        try:
            await ensure_streams(nc, subjects)
        finally:
            await nc.close()
        return
