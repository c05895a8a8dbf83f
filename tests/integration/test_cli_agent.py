"""``ffrtmp agent run`` as a real process: registers, serves /health, drains on SIGTERM."""

from __future__ import annotations

import re
import signal
import sys
import urllib.request
from pathlib import Path

import anyio
import pytest
from anyio.streams.text import TextReceiveStream

from agent.main import default_id
from events.agent_events import AgentDeregistered, AgentRegistered
from events.base import AgentEventBase
from events.jetstream import JetStreamEventStore
from ffrtmp.natsd import NatsServer

pytestmark = pytest.mark.anyio

CLI = [sys.executable, "-c", "from ffrtmp.cli import main; main()"]


async def agent_events(store: JetStreamEventStore) -> list[AgentEventBase]:
    """Every agent event under the store's prefix."""
    return [e async for _, e in store.replay() if isinstance(e, AgentEventBase)]


async def read_until(proc: anyio.abc.Process, marker: str) -> str:
    """What the process printed, up to a line holding ``marker``."""
    assert proc.stdout is not None
    text = ""
    async for chunk in TextReceiveStream(proc.stdout):
        text += chunk
        if marker in text:
            return text
    pytest.fail(f"the agent ended before printing {marker!r}: {text!r}")


def get(url: str) -> int:
    """The HTTP status of a GET."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 -- our own http URL
        return int(response.status)


async def test_agent_registers_serves_health_and_deregisters_on_sigterm(
    nats_server: NatsServer, jetstream_store: JetStreamEventStore, prefix: str
) -> None:
    """The agent registers with detected capabilities; SIGTERM deregisters it and exits 0."""
    argv = [*CLI, "agent", "run", "--nats", nats_server.url, "--prefix", prefix]
    argv += ["--id", "cli-1", "--health-port", "0", "--heartbeat-s", "0.5", "--slots", "2"]
    with anyio.fail_after(60):
        async with await anyio.open_process(argv) as proc:
            out = await read_until(proc, "health on port")
            found = re.search(r"health on port (\d+)", out)
            assert found, out
            assert await anyio.to_thread.run_sync(get, f"http://127.0.0.1:{found[1]}/ready") == 200
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
    events = await agent_events(jetstream_store)
    assert [type(e) for e in events] == [AgentRegistered, AgentDeregistered]
    registered = events[0]
    assert isinstance(registered, AgentRegistered)
    assert (registered.agent, registered.slots) == ("cli-1", 2)
    assert "libx264" in registered.capabilities.encoders
    assert registered.capabilities.ffmpeg_version


async def test_a_missing_ffmpeg_refuses_to_start_in_one_line(
    nats_server: NatsServer, prefix: str
) -> None:
    """--ffmpeg naming nothing: one line on stderr, exit 1, no traceback."""
    argv = [*CLI, "agent", "run", "--nats", nats_server.url, "--prefix", prefix]
    argv += ["--ffmpeg", "/nonexistent/ffmpeg", "--health-port", "0"]
    with anyio.fail_after(30):
        done = await anyio.run_process(argv, check=False)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 1
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: FFmpeg unusable: /nonexistent/ffmpeg")
    assert "Traceback" not in done.stderr.decode()


def test_the_default_id_is_the_short_host_name_as_a_subject_token() -> None:
    """Dots end the name; what a subject token cannot hold becomes a dash."""
    assert default_id("GPU-07.dc1.example.com") == "gpu-07"
    assert default_id("my host*") == "my-host"
    assert default_id("...") == "agent"


async def test_a_media_root_that_is_not_a_directory_refuses_to_start(tmp_path: Path) -> None:
    """``--media-root`` naming no directory stops the agent at once with one line, exit 1."""
    argv = [*CLI, "agent", "run", "--nats", "nats://127.0.0.1:1", "--health-port", "0",
            "--media-root", str(tmp_path / "absent")]  # fmt: skip
    with anyio.fail_after(60):
        done = await anyio.run_process(argv, check=False)
    assert done.returncode == 1
    lines = [line for line in done.stderr.decode().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "--media-root" in lines[0]
    assert "not a directory" in lines[0]
