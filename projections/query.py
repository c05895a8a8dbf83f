"""Read-only SQL over a projection: what is allowed, how it runs, how results and errors read.

Three fences keep a question from changing anything: the statement must be one ``SELECT`` (or
``EXPLAIN``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, which DuckDB parses as selects); it runs in a
transaction that is always rolled back; and the database was opened with
``enable_external_access=false``, so ``read_csv``, ``read_parquet``, ``glob`` and their kind
cannot touch a file. DuckDB's errors become ``QueryFailed`` with one line that ends in the line
and column DuckDB pointed at.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import duckdb
import msgspec

from events.errors import FfrtmpError

DEFAULT_ROW_LIMIT: Final = 10_000
"""Rows a query returns at most unless it asks for another limit."""

_ALLOWED: Final = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
_LINE: Final = re.compile(r"^LINE (\d+): ")


class QueryRefused(FfrtmpError):
    """The statement would write, change the schema or reach outside the database."""

    def __init__(self, reason: str) -> None:
        """Say what was refused and what is allowed."""
        super().__init__(f"refused: {reason}; the projections answer read-only SELECT queries")
        self.reason = reason


class QueryFailed(FfrtmpError):
    """DuckDB could not run the query: a syntax error, an unknown table or column."""

    def __init__(self, message: str) -> None:
        """Keep DuckDB's message, on one line."""
        super().__init__(message)
        self.message = message


class QueryResult(msgspec.Struct, frozen=True, kw_only=True):
    """Rows with their column names and DuckDB types; ``truncated`` when the limit cut them."""

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    truncated: bool = False
    limit: int | None = None

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def check_read_only(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Refuse anything but exactly one read-only statement."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise failed(exc) from exc
    if len(statements) != 1:
        raise QueryRefused(f"{len(statements)} statements; send exactly one")
    kind = statements[0].type
    if kind not in _ALLOWED:
        raise QueryRefused(f"{kind.name} statements")


def run_read_only(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[object] | None = None,
    limit: int | None = None,
) -> QueryResult:
    """Check and run ``sql`` on ``con`` (a cursor of its own) in a rolled-back transaction."""
    check_read_only(con, sql)
    con.begin()
    try:
        relation = con.execute(sql, list(params) if params else None)
        description = relation.description or []
        rows = relation.fetchall() if limit is None else relation.fetchmany(limit + 1)
    except duckdb.PermissionException as exc:
        raise QueryRefused(f"access outside the database ({one_line(str(exc))})") from exc
    except duckdb.Error as exc:
        raise failed(exc) from exc
    finally:
        con.rollback()
    truncated = limit is not None and len(rows) > limit
    return QueryResult(
        columns=[d[0] for d in description],
        types=[str(d[1]) for d in description],
        rows=[list(row) for row in (rows[:limit] if truncated else rows)],
        truncated=truncated,
        limit=limit,
    )


def failed(exc: duckdb.Error) -> QueryFailed:
    """A DuckDB error as ``QueryFailed`` on one line."""
    return QueryFailed(one_line(str(exc)))


def one_line(message: str) -> str:
    """DuckDB's message on one line, its ``LINE n:`` and caret turned into a position."""
    lines = message.splitlines()
    text = " ".join(line.strip() for line in lines if line.strip() and not _is_pointer(line))
    for i, line in enumerate(lines):
        found = _LINE.match(line)
        if found and i + 1 < len(lines) and "^" in lines[i + 1]:
            column = lines[i + 1].index("^") - len(found.group(0)) + 1
            text = " ".join(
                part.strip() for part in lines[:i] if part.strip() and not _is_pointer(part)
            )
            return f"{text} (at line {found.group(1)}, column {column})"
    return text


def _is_pointer(line: str) -> bool:
    return bool(_LINE.match(line)) or set(line.strip()) <= {"^"}
