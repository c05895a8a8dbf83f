"""``ffrtmp streams create``: the setup step that makes a farm's streams and buckets.

Run it once per farm (and again to change the replica count): it creates the events, commands,
work and heartbeat streams and the lease, snapshot and log buckets, or updates them, all with
the log's replica count. Processes only bind to what it made, so under per-role users only the
user that runs this needs the right to create streams (``scheduler``, or an admin user).
``ffrtmp up`` and ``ffrtmp server`` run it themselves.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from events.connection import NatsOptions, open_nats
from events.errors import FfrtmpError
from events.natserrors import failing_as
from events.streams import DEFAULT_LEASE_TTL_S, ensure_streams
from ffrtmp.cli import connflags
from ffrtmp.cli.common import NatsOpt, PrefixOpt, Target, explained, target
from ffrtmp.config import resolve

app = typer.Typer(help="The farm's streams and buckets: the setup step.", no_args_is_help=True)

Replicas = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=5,
        help="Replicas of every stream and bucket (3 in a cluster; env FFRTMP_REPLICAS; "
        "default: keep, or 1 for new ones).",
    ),
]


@app.command()
def create(
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    replicas: Replicas = None,
    lease_ttl_s: Annotated[
        float,
        typer.Option(min=0.1, help="Lease time of a new lease bucket (a standby's takeover)."),
    ] = DEFAULT_LEASE_TTL_S,
) -> None:
    """Create or update the streams and buckets of a farm, with the log's replica count.

    Example: ffrtmp streams create --nats nats://nats-1:4222,nats://nats-2:4222 --replicas 3
    """
    where = target(nats, prefix, None)
    count = resolve({"replicas": replicas, **connflags.given()}).replicas
    with explained():
        names = asyncio.run(_create(where, count, lease_ttl_s))
    shown = "kept" if count is None else str(count)
    typer.echo(f"ready on {where.url} (replicas {shown}): {', '.join(names)}")


async def _create(where: Target, replicas: int | None, lease_ttl_s: float) -> list[str]:
    nc = await open_nats(where.nats or NatsOptions(url=where.url))
    try:
        with failing_as(_denied):
            return await ensure_streams(nc, where.subjects, replicas, lease_ttl_s=lease_ttl_s)
    finally:
        await nc.close()


def _denied(exc: Exception) -> FfrtmpError:
    """A denied API request gets no answer: most likely this user may not create streams."""
    return FfrtmpError(
        f"JetStream did not answer the setup ({type(exc).__name__}): may this user create "
        "streams? Run it as `scheduler` or an admin user"
    )
