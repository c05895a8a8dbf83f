"""``ffrtmp server`` end to end: streams created, URL printed, clean stop on SIGTERM."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from events.jetstream import JetStreamEventStore
from events.subjects import Subjects
from ffrtmp.natsd import LOG_NAME, free_port

pytestmark = pytest.mark.anyio


async def _read_until_ready(proc: anyio.abc.Process) -> str:
    assert proc.stdout is not None
    text = ""
    async for chunk in TextReceiveStream(proc.stdout):
        text += chunk
        if "ready" in text:
            return text
    pytest.fail(f"ffrtmp server ended before it was ready: {text!r}")


@pytest.mark.usefixtures("nats_binary")
async def test_server_creates_streams_and_stops_cleanly(tmp_path: Path) -> None:
    """The command prints its URL, serves the prefix's streams, and exits 0 on SIGTERM."""
    data_dir, port = tmp_path / "data", free_port()
    argv = [sys.executable, "-c", "from ffrtmp.cli import main; main()", "server"]
    argv += ["--nats-port", str(port), "--data-dir", str(data_dir), "--prefix", "cli"]
    argv += ["--http-port", "0"]
    with anyio.fail_after(20):
        async with await anyio.open_process(argv) as proc:
            out = await _read_until_ready(proc)
            url = f"nats://127.0.0.1:{port}"
            assert url in out
            async with await JetStreamEventStore.connect(url, Subjects("cli")) as store:
                assert await store.last_seq() == 0
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
    assert "Server Exiting" in (data_dir / LOG_NAME).read_text()
