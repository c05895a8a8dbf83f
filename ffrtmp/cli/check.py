"""``ffrtmp check``: read the whole log and name every broken invariant, one line each.

Exit status: 0 when the log keeps every promise, 3 when it shows a violation (1 stays for "could
not check": an unreachable server, a missing stream), so a script can tell the two apart. The
count of stored dead letters is reported beside the log's counts; they break no invariant of the
log (what they were never reached it), so they do not change the exit status.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Final

import msgspec
import typer

from events.connection import redact_logs
from events.jetstream import JetStreamEventStore
from events.natserrors import unavailable
from ffrtmp.check.invariants import DEFAULT_GRACE_S, CheckSettings, Report
from ffrtmp.check.projection import check_projection
from ffrtmp.check.read import check_store
from ffrtmp.cli.common import NatsOpt, Output, PrefixOpt, Target, explained, target
from ffrtmp.client.deadletters import bounds

EXIT_VIOLATIONS: Final = 3


def command(
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: Annotated[
        Output, typer.Option(help="table: one line per violation; json: the report.")
    ] = Output.TABLE,
    quiescent: Annotated[
        bool, typer.Option("--quiescent", help="Nothing runs any more: every job must be done.")
    ] = False,
    grace_s: Annotated[
        float, typer.Option(help="How long a due retry or a lost holder may wait.")
    ] = DEFAULT_GRACE_S,
    db: Annotated[
        Path | None,
        typer.Option(help="Also compare this projection (a stopped projector's DuckDB file)."),
    ] = None,
) -> None:
    """Check the log's invariants: no job lost, run twice, stuck, or moved illegally.

    Example: ffrtmp check --nats nats://127.0.0.1:4222 --output json --db farm-copy.duckdb
    """
    logging.basicConfig(level=logging.ERROR)  # nats-py's reconnect chatter is not the answer
    redact_logs()
    where = target(nats, prefix, None)
    settings = CheckSettings(grace_s=grace_s, quiescent=quiescent)
    with explained():
        report = asyncio.run(_check(where, settings, db))
    if output is Output.JSON:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        _print(report)
    if not report.ok:
        raise typer.Exit(EXIT_VIOLATIONS)


async def _check(where: Target, settings: CheckSettings, db: Path | None) -> Report:
    async with await JetStreamEventStore.connect(where.nats or where.url, where.subjects) as store:
        report = await check_store(store, settings)
        with unavailable(where.url, "cannot read dead letters"):
            known = await bounds(store.nc, where.subjects)
        report.dead_letters = None if known is None else known.count
        if db is not None:
            report.violations += await check_projection(store.nc, db, where.subjects.prefix)
        return report


def _print(report: Report) -> None:
    for violation in report.violations:
        typer.echo(violation.line())
    states = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items())) or "none"
    dead = "" if report.dead_letters is None else f", {report.dead_letters} dead letters"
    typer.echo(
        f"{report.events} events, {report.jobs} jobs ({states}), {report.agents} agents, "
        f"{report.unknown} unknown{dead}: {len(report.violations)} violations",
        err=True,
    )
