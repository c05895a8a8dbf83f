"""``ffrtmp server``: the embedded nats-server with ffrtmp's config and streams, in the foreground.

One command gives a machine a durable log: it starts the ``nats-server`` shipped with ffrtmp
(fsync on every write), runs the setup step (every stream and bucket under ``--prefix``), says
where to connect, and on Ctrl-C or SIGTERM stops the server cleanly so nothing acknowledged is
lost.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import anyio
import nats
import typer

from events.errors import FfrtmpError, StoreUnavailable
from events.natserrors import failing_as
from events.streams import all_streams, bucket_streams, ensure_streams
from events.subjects import Subjects
from ffrtmp.cli.common import PrefixOpt
from ffrtmp.config import resolve
from ffrtmp.natsd import NatsServer, NatsSettings


def command(
    port: Annotated[
        int, typer.Option("--nats-port", "--port", help="Client port (--port: the same).")
    ] = 4222,
    data_dir: Annotated[Path, typer.Option(help="JetStream store directory.")] = Path(
        "./data/nats"
    ),
    prefix: PrefixOpt = None,
    http_port: Annotated[int, typer.Option(help="Monitoring port; 0 turns it off.")] = 8222,
) -> None:
    """Run nats-server with ffrtmp's nats.conf and streams until Ctrl-C.

    Example: ffrtmp server --nats-port 4222 --data-dir ./data/nats
    """
    subjects = Subjects(resolve({"prefix": prefix}).prefix)  # a bad prefix: before anything starts
    settings = NatsSettings(port=port, store_dir=str(data_dir), http_port=http_port or None)
    anyio.run(_serve, NatsServer(settings), subjects)


async def _serve(server: NatsServer, subjects: Subjects) -> None:
    """Run until a signal (stop cleanly) or until the server dies by itself (an error)."""
    died = anyio.Event()

    async def watch() -> None:
        await anyio.to_thread.run_sync(server.wait, abandon_on_cancel=True)
        died.set()
        tg.cancel_scope.cancel()

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with server:
            await _create_streams(server.url, subjects)
            _announce(server, subjects)
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                async for _ in signals:
                    typer.echo("stopping nats-server …")
                    tg.cancel_scope.cancel()
                    break
    if died.is_set():
        raise FfrtmpError(f"nats-server exited by itself; see {server.log_path}")


async def _create_streams(url: str, subjects: Subjects) -> None:
    with failing_as(lambda _: StoreUnavailable(url, "the server started but refuses connections")):
        nc = await nats.connect(url, max_reconnect_attempts=1, reconnect_time_wait=0)
    try:
        await ensure_streams(nc, subjects)
    finally:
        await nc.close()


def _announce(server: NatsServer, subjects: Subjects) -> None:
    typer.echo(f"NATS URL:  {server.url}")
    typer.echo(f"data dir:  {server.store_dir}")
    typer.echo(f"log:       {server.log_path}")
    if server.settings.http_port:
        typer.echo(f"monitor:   http://127.0.0.1:{server.settings.http_port}/jsz")
    names = [str(config.name) for config in all_streams(subjects)] + bucket_streams(subjects)
    typer.echo(f"streams:   {', '.join(names)} (the setup step, `ffrtmp streams create`)")
    typer.echo("ready; Ctrl-C stops it")
