"""A NATS cluster on one machine: three (or more) ``nats-server`` nodes on loopback ports.

Each node is a ``natsd.NatsServer`` with its own client and route ports, its own store and a
generated config (the shipped ``nats.conf`` plus ``server_name`` and a ``cluster`` block naming
every node's route). Nodes can be killed (``kill -9``) and restarted one by one on the same
ports and store, which is what the cluster tests do under load. An I/O edge of the control
plane, built on ``natsd``. It ships, though the chaos tests use it too, because users run it:
``ffrtmp bench cluster`` (``ffrtmp.bench.cluster``) measures recovery on it, and
``docs/cluster.md`` shows it for trying a cluster before deploying one on real hosts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import msgspec

from ffrtmp.natsd import NatsServer, NatsSettings, free_port, packaged_config

CLUSTER_NAME: Final = "ffrtmp"
CONFIG_NAME: Final = "node.conf"


class ClusterSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where the nodes keep their stores, and how many there are."""

    root: str
    nodes: int = 3
    host: str = "127.0.0.1"
    ready_timeout_s: float = 30.0


def node_config(name: str, route_port: int, routes: list[int], host: str) -> str:
    """The shipped settings plus this node's name and its routes to the others."""
    listed = "\n".join(f"    nats-route://{host}:{port}" for port in routes)
    return (
        packaged_config().read_text()
        + f"\nserver_name: {name}\n"
        + f"cluster {{\n  name: {CLUSTER_NAME}\n  listen: {host}:{route_port}\n"
        + f"  routes: [\n{listed}\n  ]\n}}\n"
    )


class NatsCluster:
    """N nodes, each started, killed and restarted on its own ports and store."""

    def __init__(self, settings: ClusterSettings) -> None:
        """Choose ports and write each node's config; nothing starts yet."""
        self.settings = settings
        root = Path(settings.root)
        routes = [free_port() for _ in range(settings.nodes)]
        self.nodes: list[NatsServer] = []
        for index in range(settings.nodes):
            directory = root / f"n{index + 1}"
            directory.mkdir(parents=True, exist_ok=True)
            config = directory / CONFIG_NAME
            config.write_text(node_config(f"n{index + 1}", routes[index], routes, settings.host))
            node = NatsSettings(
                port=free_port(),
                store_dir=str(directory / "store"),
                host=settings.host,
                config=str(config),
                ready_timeout_s=settings.ready_timeout_s,
            )
            self.nodes.append(NatsServer(node))

    @property
    def urls(self) -> list[str]:
        """Every node's client URL."""
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """The seed list clients connect with (``JetStreamEventStore.connect`` splits it)."""
        return ",".join(self.urls)

    async def start(self) -> None:
        """Start every node and wait until each serves JetStream (a meta leader is elected)."""
        for node in self.nodes:
            node.spawn()
        await asyncio.gather(*(node.wait_ready() for node in self.nodes))

    def kill(self, index: int) -> None:
        """``kill -9`` one node."""
        self.nodes[index].kill()

    async def restart(self, index: int) -> None:
        """Start a killed node again on its ports and store; return once it serves."""
        node = self.nodes[index]
        node.spawn()
        await node.wait_ready()

    async def stop(self) -> None:
        """Stop every node cleanly."""
        await asyncio.gather(*(asyncio.to_thread(node.stop) for node in self.nodes))

    async def __aenter__(self) -> Self:
        """Start the cluster; a node that fails to start takes the others down."""
        try:
            await self.start()
        except BaseException:
            for node in self.nodes:
                node.kill()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop every node."""
        await self.stop()
