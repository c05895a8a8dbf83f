"""``ffrtmp exporter run``: Prometheus metrics of the farm at ``http://HOST:PORT/metrics``.

The exporter keeps its own projection of the log, so its counters are counts of events and
read the same after a restart; per-worker gauges come from heartbeats. Ctrl-C or SIGTERM stops
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Annotated

import typer

from events.aio import cancel_on_signals
from events.connection import redact_logs
from events.jetstream import JetStreamEventStore
from ffrtmp.cli.common import NatsOpt, PrefixOpt, Target, explained, target
from ffrtmp.exporter.service import Exporter, ExporterSettings

app = typer.Typer(help="The Prometheus exporter: the log's counters and the workers' telemetry.")


@app.command()
def run(
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    port: Annotated[
        int,
        typer.Option("--metrics-port", "--port", help="HTTP port of /metrics (--port: the same)."),
    ] = 9090,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",  # noqa: S104
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Where the exporter keeps its projection; unset: in memory."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Serve the farm's metrics until Ctrl-C.

    Example: ffrtmp exporter run --metrics-port 9090 --nats nats://127.0.0.1:4222
    """
    where = target(nats, prefix, None)
    settings = ExporterSettings(
        host=host, port=port, data_dir=None if data_dir is None else str(data_dir)
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact_logs()
    with explained():
        asyncio.run(_run(where, settings))


async def _run(where: Target, settings: ExporterSettings) -> None:
    subjects = where.subjects
    store = await JetStreamEventStore.connect(where.nats or where.url, subjects)
    async with store:
        exporter = Exporter(store, settings)
        task = asyncio.create_task(exporter.run())
        cancel_on_signals(task)
        listening = asyncio.create_task(exporter.listening.wait())
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if exporter.listening.is_set():
            metrics = f"http://{settings.host}:{exporter.port}/metrics"
            typer.echo(f"exporter on {where.url} (prefix {subjects.prefix}): {metrics}")
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        typer.echo("exporter stopped")
