"""A server that stops answering while the scheduler's work messages wait for their acks.

nats-py's ``publish_async`` futures have no deadline. A nats-server killed while it held a
dispatch never acknowledges it, and the scheduler's decider waited for ever while its lease loop
kept renewing: a leader that decided nothing for minutes (the chaos run, under load). Here the
server is real and is stopped with SIGSTOP while the messages are in flight.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig

from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.outbox import Outgoing, publish

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_work_messages_never_acknowledged_do_not_hold_the_sender(
    private_nats_server: NatsServer, tmp_path: Path
) -> None:
    """With the server stopped, ``publish`` returns after its ack wait, the messages logged."""
    del tmp_path
    server = private_nats_server
    server.spawn()
    await server.wait_ready()
    nc = await nats.connect(server.url, allow_reconnect=False)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="STALL", subjects=["stall.>"]))
        messages = [Outgoing(subject=f"stall.w{i}", data=b"{}", msg_id=f"m{i}") for i in range(3)]
        await publish(js, messages, ack_wait_s=1.0)  # answered: the server runs
        pid = int(server.pid_path.read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            stalled = [messages[0], Outgoing(subject="stall.x", data=b"{}", msg_id="x")]
            await publish(js, stalled, ack_wait_s=1.0)
            waited = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert 0.9 <= waited < 30.0  # waited its time, then returned: no answer was coming
        assert js.publish_async_pending() == 0  # the late acks were let go
    finally:
        await nc.close()
