"""``ffrtmp projector run`` and ``ffrtmp projections rebuild``: the DuckDB read models.

The projector owns its DuckDB file: it follows the log into it (one transaction per batch, with
the checkpoint) and answers read-only SQL on ``<prefix>.api.sql`` as the NATS micro service
``ffrtmp-projector``. Several projectors may run, each with its own file: they share the
requests. A server restart pauses it; Ctrl-C or SIGTERM stops it between batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Annotated, Final

import typer
from nats.aio.client import Client as NatsClient

from events.aio import cancel_on_signals
from events.connection import redact_logs
from events.errors import InvalidSpec, StoreUnavailable
from ffrtmp.cli.common import NatsOpt, PrefixOpt, Target, explained, target
from ffrtmp.client.conn import connect
from projections import ProjectionSettings, Projector, catch_up, follow
from projections.service import serve, sql_subject

log = logging.getLogger("ffrtmp.projector")

app = typer.Typer(help="The projector: the log folded into DuckDB, SQL answered over NATS.")
rebuild_app = typer.Typer(help="The DuckDB projections: rebuild one from the log.")

RETRY_S: Final = 1.0
REPORT_EVERY_S: Final = 10.0
_DEFAULTS: Final = ProjectionSettings()

Db = Annotated[Path, typer.Option("--db", help="The DuckDB file the projection lives in.")]
EnergyPrice = Annotated[float, typer.Option(min=0, help="Price of a kWh, for the cost views.")]
ComputePrice = Annotated[
    float, typer.Option(min=0, help="Price of an hour of a busy slot, for the cost views.")
]
Sla = Annotated[
    list[str] | None,
    typer.Option(
        help="Per-queue SLA as QUEUE=MAX_WAIT_S,MAX_RUN_S (repeat per queue); "
        "defaults: live=5,120 default=60,3600 batch=3600,86400."
    ),
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Log every batch.")]


def settings(
    energy_price: float, compute_price: float, sla: list[str] | None
) -> ProjectionSettings:
    """The views' prices and targets from the options."""
    targets = dict(_DEFAULTS.sla)
    for item in sla or []:
        queue, sep, pair = item.partition("=")
        wait, comma, run = pair.partition(",")
        try:
            targets[queue.strip()] = (float(wait), float(run))
        except ValueError:
            sep = comma = ""
        if not (sep and comma and queue.strip()):
            raise InvalidSpec(
                "--sla", f"{item!r}: write QUEUE=MAX_WAIT_S,MAX_RUN_S, e.g. live=5,120"
            )
    return ProjectionSettings(
        energy_price_per_kwh=energy_price, compute_price_per_hour=compute_price, sla=targets
    )


@app.command()
def run(
    db: Db,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    energy_price: EnergyPrice = _DEFAULTS.energy_price_per_kwh,
    compute_price: ComputePrice = _DEFAULTS.compute_price_per_hour,
    sla: Sla = None,
    verbose: Verbose = False,
) -> None:
    """Follow the log into DB and answer SQL over NATS until Ctrl-C.

    Example: ffrtmp projector run --db farm.duckdb --nats nats://127.0.0.1:4222
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("nats").setLevel(logging.CRITICAL)
    redact_logs()
    where = target(nats, prefix, None)
    with explained():
        projector = Projector(db, where.subjects.prefix, settings(energy_price, compute_price, sla))
        try:
            asyncio.run(_run(projector, where))
        finally:
            projector.close()


async def _run(projector: Projector, where: Target) -> None:
    async with connect(where) as conn:
        service = await serve(conn.nc, projector)
        task = asyncio.create_task(_follow(projector, where, conn.nc))
        cancel_on_signals(task)
        rebuilt = " (rebuilt: new database or projection version)" if projector.rebuilt else ""
        typer.echo(
            f"projector on {where.url}: {projector.db} at checkpoint {projector.checkpoint()}"
            f"{rebuilt}; SQL on {sql_subject(where.subjects)}"
        )
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        finally:
            await service.stop()
        typer.echo(f"projector stopped at checkpoint {projector.checkpoint()}")


async def _follow(projector: Projector, where: Target, nc: NatsClient) -> None:
    """Follow until cancelled; an unreachable server pauses it, then it goes on."""
    report = _Report()
    while True:
        try:
            await follow(projector, nc, on_batch=report)
        except StoreUnavailable as exc:
            log.warning("%s; retrying in %.0f s", exc, RETRY_S)
            await asyncio.sleep(RETRY_S)
        else:
            log.info("the log ended at %s; following again", where.url)


class _Report:
    """Logs each batch at debug level and a summary every ``REPORT_EVERY_S``."""

    def __init__(self) -> None:
        self.events = 0
        self.last = time.monotonic()

    def __call__(self, checkpoint: int, size: int) -> None:
        self.events += size
        log.debug("applied %d events, checkpoint %d", size, checkpoint)
        now = time.monotonic()
        if now - self.last >= REPORT_EVERY_S:
            log.info(
                "applied %d events in %.0f s, checkpoint %d",
                self.events,
                now - self.last,
                checkpoint,
            )
            self.events, self.last = 0, now


@rebuild_app.command()
def rebuild(db: Db, nats: NatsOpt = None, prefix: PrefixOpt = None) -> None:
    """Drop DB's rows and fold the whole log into it again; prints events/s.

    Stop the projector that owns DB first. Example: ffrtmp projections rebuild --db farm.duckdb
    """
    where = target(nats, prefix, None)
    with explained():
        projector = Projector(db, where.subjects.prefix)
        try:
            events, seconds = asyncio.run(_rebuild(projector, where))
            status = projector.status()
        finally:
            projector.close()
        rate = events / seconds if seconds > 0 else 0.0
        typer.echo(
            f"rebuilt {db}: {events:,} events in {seconds:.2f} s ({rate:,.0f} events/s); "
            f"checkpoint {status.seq}, {status.unknown_events} unknown, "
            f"{status.malformed_events} malformed"
        )


async def _rebuild(projector: Projector, where: Target) -> tuple[int, float]:
    async with connect(where) as conn:
        projector.reset()
        start = time.perf_counter()
        events = await catch_up(projector, conn.nc)
        return events, time.perf_counter() - start
