"""``ffrtmp sql "SELECT …"``: ask a projector, or replay the log into a local DuckDB.

The answer prints as a table for people, or as JSON or CSV for programs. Only one read-only
statement is accepted; DuckDB's errors print as one line with the position it pointed at. The
tables and views are described in ``projections`` and the README ("Read models").
"""

from __future__ import annotations

import csv
import sys
from enum import StrEnum
from typing import Annotated, Any, Final

import msgspec
import typer
from rich.table import Table

from ffrtmp.cli.common import NatsOpt, PrefixOpt, Target, console, run, target
from ffrtmp.client.conn import connect
from projections import Projector, QueryResult, catch_up
from projections.query import DEFAULT_ROW_LIMIT
from projections.service import MAX_ROW_LIMIT, ask

_JSON: Final = msgspec.json.Encoder(enc_hook=str)


class SqlOutput(StrEnum):
    """How the answer prints."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    """``--output json``: the rows with their columns and types, and the checkpoint asked at."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool
    limit: int | None
    checkpoint: int


def command(
    query: Annotated[str, typer.Argument(help="One read-only SQL statement.")],
    local: Annotated[
        bool, typer.Option("--local", help="Replay the log into a temporary DuckDB instead.")
    ] = False,
    output: Annotated[
        SqlOutput, typer.Option("--output", "-o", help="table, json or csv.")
    ] = SqlOutput.TABLE,
    limit: Annotated[
        int, typer.Option(min=0, max=MAX_ROW_LIMIT, help="Rows to return at most.")
    ] = DEFAULT_ROW_LIMIT,
    timeout_s: Annotated[
        float, typer.Option(min=0.1, help="How long to wait for a projector.")
    ] = 30.0,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Ask the projections a question in SQL.

    Example: ffrtmp sql "SELECT queue, wait_p95_s FROM job_time_percentiles"
    """
    where = target(nats, prefix, None)
    answer = run(_local(where, query, limit) if local else _remote(where, query, limit, timeout_s))
    _print(answer, output)


async def _remote(where: Target, query: str, limit: int, timeout_s: float) -> Answer:
    async with connect(where) as conn:
        reply = await ask(conn.nc, where.subjects, query, limit=limit, timeout_s=timeout_s)
    assert reply.result is not None  # noqa: S101 -- ask raises when there is no result
    return _answer(reply.result, reply.checkpoint)


async def _local(where: Target, query: str, limit: int) -> Answer:
    projector = Projector(":memory:", where.subjects.prefix)
    try:
        async with connect(where) as conn:
            await catch_up(projector, conn.nc)
        return _answer(projector.query(query, limit=limit), projector.checkpoint())
    finally:
        projector.close()


def _answer(result: QueryResult, checkpoint: int) -> Answer:
    return Answer(
        columns=result.columns,
        types=result.types,
        rows=result.rows,
        truncated=result.truncated,
        limit=result.limit,
        checkpoint=checkpoint,
    )


def _print(answer: Answer, output: SqlOutput) -> None:
    match output:
        case SqlOutput.JSON:
            typer.echo(_JSON.encode(answer).decode())
        case SqlOutput.CSV:
            writer = csv.writer(sys.stdout, lineterminator="\n")
            writer.writerow(answer.columns)
            writer.writerows([_cell(value) for value in row] for row in answer.rows)
        case SqlOutput.TABLE:
            _table(answer)
    if answer.truncated:
        typer.secho(
            f"showing the first {len(answer.rows):,} rows; there are more "
            f"(--limit up to {MAX_ROW_LIMIT:,}, or aggregate in SQL)",
            err=True,
            fg=typer.colors.YELLOW,
        )


def _table(answer: Answer) -> None:
    table = Table(show_lines=False)
    for name, kind in zip(answer.columns, answer.types, strict=True):
        numeric = kind.split("(")[0] in _NUMERIC
        table.add_column(f"{name}\n[dim]{kind}[/dim]", justify="right" if numeric else "left")
    for row in answer.rows:
        table.add_row(*(_cell(value) for value in row))
    console().print(table)
    typer.secho(f"{len(answer.rows):,} rows at checkpoint {answer.checkpoint}", err=True, dim=True)


_NUMERIC: Final = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UBIGINT",
        "UINTEGER",
        "DOUBLE",
        "FLOAT",
        "DECIMAL",
    }
)


def _cell(value: object) -> str:
    """A value as text: NULL empty, floats to six significant digits, lists and maps as JSON."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | dict):
        return _JSON.encode(value).decode()
    return str(value)
