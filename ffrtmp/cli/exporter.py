"""``ffrtmp exporter run``: Prometheus metrics of the farm at ``http://HOST:PORT/metrics``.

The exporter keeps its own projection of the log, so its counters are counts of events and
read the same after a restart; per-worker gauges come from heartbeats. Ctrl-C or SIGTERM stops
it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from events.jetstream import JetStreamEventStore
from events.subjects import DEFAULT_PREFIX, Subjects
from ffrtmp.exporter.service import Exporter, ExporterSettings

app = typer.Typer(help="The Prometheus exporter: the log's counters and the workers' telemetry.")

NATS_URL = os.environ.get("FFRTMP_NATS_URL", "nats://127.0.0.1:4222")


@app.command()
def run(
    nats_url: Annotated[
        str, typer.Option("--nats", help="NATS URL (or FFRTMP_NATS_URL).")
    ] = NATS_URL,
    prefix: Annotated[str, typer.Option(help="Subject and stream prefix.")] = DEFAULT_PREFIX,
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
    subjects = Subjects(prefix)
    settings = ExporterSettings(
        host=host, port=port, data_dir=None if data_dir is None else str(data_dir)
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_run(nats_url, subjects, settings))


async def _run(url: str, subjects: Subjects, settings: ExporterSettings) -> None:
    store = await JetStreamEventStore.connect(url, subjects)
    async with store:
        exporter = Exporter(store, settings)
        task = asyncio.create_task(exporter.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        listening = asyncio.create_task(exporter.listening.wait())
        await asyncio.wait({task, listening}, return_when=asyncio.FIRST_COMPLETED)
        if exporter.listening.is_set():
            where = f"http://{settings.host}:{exporter.port}/metrics"
            typer.echo(f"exporter on {url} (prefix {subjects.prefix}): {where}")
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        typer.echo("exporter stopped")
