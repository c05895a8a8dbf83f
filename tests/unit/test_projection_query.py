"""The read-only fence and how DuckDB's errors read, on an in-memory projection."""

from __future__ import annotations

import pytest

from projections import Projector, QueryFailed, QueryRefused
from projections.query import one_line


@pytest.fixture(scope="module")
def projector() -> Projector:
    """An empty projection."""
    return Projector()


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("INSERT INTO jobs (job) VALUES ('x')", "INSERT"),
        ("UPDATE jobs SET status = 'x'", "UPDATE"),
        ("DELETE FROM jobs", "DELETE"),
        ("CREATE TABLE t (a INT)", "CREATE"),
        ("DROP TABLE jobs", "DROP"),
        ("ATTACH 'x.duckdb'", "ATTACH"),
        ("COPY jobs TO 'x.csv'", "COPY"),
        ("PRAGMA version", "PRAGMA"),
        ("INSTALL httpfs", "LOAD"),
        ("SET threads = 1", "SET"),
        ("CALL pragma_version()", "CALL"),
    ],
)
def test_statements_other_than_select_are_refused(
    projector: Projector, sql: str, kind: str
) -> None:
    """Each kind of statement that is not a query is refused, naming the kind."""
    with pytest.raises(QueryRefused, match=f"refused: {kind} statements"):
        projector.query(sql)


def test_file_access_inside_a_select_is_refused(projector: Projector) -> None:
    """``read_csv`` and friends cannot reach a file even inside a SELECT."""
    with pytest.raises(QueryRefused, match="access outside the database"):
        projector.query("SELECT * FROM read_csv('/etc/passwd')")


def test_several_statements_are_refused(projector: Projector) -> None:
    """Exactly one statement per question."""
    with pytest.raises(QueryRefused, match="2 statements"):
        projector.query("SELECT 1; SELECT 2")


def test_selects_with_parameters_answer_and_a_limit_truncates(projector: Projector) -> None:
    """Parameters fill placeholders; a result past the limit is cut and flagged."""
    result = projector.query("SELECT * FROM range(?) t(i)", [5], limit=3)
    assert (result.columns, result.types) == (["i"], ["BIGINT"])
    assert (result.rows, result.truncated, result.limit) == ([[0], [1], [2]], True, 3)
    assert projector.query("SELECT 42 AS x").records() == [{"x": 42}]


def test_duckdb_errors_are_one_line_with_the_position(projector: Projector) -> None:
    """A syntax error names line and column; a binder error keeps DuckDB's words."""
    with pytest.raises(QueryFailed) as caught:
        projector.query("SELECT\n  job FROM jobs WHERE")
    assert (
        str(caught.value) == 'Parser Error: syntax error at or near "WHERE" (at line 2, column 17)'
    )
    with pytest.raises(QueryFailed, match='Referenced column "nope" not found'):
        projector.query("SELECT nope FROM jobs")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Catalog Error: Table x does not exist!", "Catalog Error: Table x does not exist!"),
        (
            'Parser Error: syntax error at or near "+"\n\nLINE 1: select 1 +\n                 ^',
            'Parser Error: syntax error at or near "+" (at line 1, column 10)',
        ),
        ("Binder Error: a\nb", "Binder Error: a b"),
    ],
)
def test_one_line(message: str, expected: str) -> None:
    """DuckDB's multi-line messages fold into one line."""
    assert one_line(message) == expected
