"""Shared fixtures: one real nats-server per session, a fresh subject prefix per test.

Tests share the session's server and stay apart by prefix (each prefix has its own four
streams). A missing ``nats-server`` binary skips the tests that need it locally and fails them
in CI, so a broken CI image cannot pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer, NatsSettings, find_binary, free_port
from tests.farm import FAST, Farm
from tests.receivers import http_server, rtmp_server, srt_listener  # noqa: F401 - fixtures


@pytest.fixture
def anyio_backend() -> str:
    """nats-py runs on asyncio only."""
    return "asyncio"


def require_nats_server() -> None:
    """Skip when nats-server is absent, unless in CI, where that is a failure."""
    try:
        find_binary()
    except FfrtmpError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def local_server(store_dir: Path) -> NatsServer:
    """A server on a free loopback port with its own store, not started yet."""
    settings = NatsSettings(port=free_port(), store_dir=str(store_dir), host="127.0.0.1")
    return NatsServer(settings)


@pytest.fixture
def nats_binary() -> None:
    """Skip (fail in CI) a test that runs nats-server itself when the binary is absent."""
    require_nats_server()


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    """One real nats-server for the whole session, stopped at the end."""
    require_nats_server()
    with local_server(tmp_path_factory.mktemp("nats")) as server:
        yield server


@pytest.fixture
def private_nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    """A server of this test's own, not started, for tests that kill or restart it."""
    require_nats_server()
    server = local_server(tmp_path / "nats")
    yield server
    server.kill()


@pytest.fixture
def prefix() -> str:
    """A subject prefix of this test's own, so tests share one server without meeting."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def jetstream_store(
    nats_server: NatsServer, prefix: str
) -> AsyncIterator[JetStreamEventStore]:
    """A JetStream event store under this test's prefix, its streams created."""
    store = await JetStreamEventStore.connect(
        nats_server.url, Subjects(prefix), ensure=True, lease_ttl_s=FAST.lease_ttl_s
    )
    async with store:
        yield store


@pytest.fixture
async def farm(jetstream_store: JetStreamEventStore) -> AsyncIterator[Farm]:
    """A farm on this test's prefix (commands, histories, simulated agents); agents stop after."""
    farm = Farm(jetstream_store)
    yield farm
    await farm.close()
