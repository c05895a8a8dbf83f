"""What only the JetStream store can get wrong: reaching the server, and its streams."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from events.errors import FfrtmpError, StoreUnavailable
from events.jetstream import JetStreamEventStore
from events.job_events import JobQueued
from events.store import Append
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer, NatsSettings, free_port

pytestmark = pytest.mark.anyio


async def test_nothing_listening_is_store_unavailable() -> None:
    """Connecting where no server listens fails fast with StoreUnavailable naming the URL."""
    url = f"nats://127.0.0.1:{free_port()}"
    with anyio.fail_after(5), pytest.raises(StoreUnavailable) as caught:
        await JetStreamEventStore.connect(url)
    assert caught.value.url == url


async def test_missing_streams_say_how_to_create_them(nats_server: NatsServer, prefix: str) -> None:
    """Connecting without ensure to a server lacking the streams points at `ffrtmp server`."""
    with pytest.raises(StoreUnavailable) as caught:
        await JetStreamEventStore.connect(nats_server.url, Subjects(prefix))
    assert "ffrtmp server" in caught.value.hint


async def test_server_without_jetstream_is_store_unavailable(
    private_nats_server: NatsServer, tmp_path: Path
) -> None:
    """A NATS server without JetStream is reported as StoreUnavailable, not a crash."""
    plain = tmp_path / "plain.conf"
    plain.write_text("max_payload: 1MB\n")
    settings = private_nats_server.settings
    server = NatsServer(
        NatsSettings(
            port=settings.port, store_dir=settings.store_dir, host="127.0.0.1", config=str(plain)
        )
    )
    server.spawn()
    try:
        with anyio.fail_after(10):
            await _wait_listening(server.url)
            with pytest.raises(StoreUnavailable):
                await JetStreamEventStore.connect(server.url, timeout_s=1)
    finally:
        server.kill()


async def _wait_listening(url: str) -> None:
    """Poll until something accepts TCP connections at ``url``."""
    host, port = url.removeprefix("nats://").split(":")
    while True:
        try:
            stream = await anyio.connect_tcp(host, int(port))
        except OSError:
            await anyio.sleep(0.05)  # poll interval until the server listens
        else:
            await stream.aclose()
            return


async def test_an_oversized_event_is_refused_not_unavailable(
    jetstream_store: JetStreamEventStore,
) -> None:
    """An event above the server's max_payload is an FfrtmpError, not an outage."""
    subjects = jetstream_store.subjects
    huge = JobQueued(job="a", at=0.0, reason="x" * (2 << 20))
    item = Append(subject=subjects.job_event("a", "sched"), event=huge, msg_id="huge")
    with pytest.raises(FfrtmpError, match="max_payload") as caught:
        await jetstream_store.append(item)
    assert not isinstance(caught.value, StoreUnavailable)
    assert await jetstream_store.last_seq() == 0
