"""A folded batch as Arrow tables, ready to commit: the step between the fold and DuckDB.

Building Arrow arrays is Python work; committing them is DuckDB's, which runs without the GIL.
Keeping the two apart lets a follower prepare the next batch while this one commits (see
``projections.follow``). Times are ``float`` Unix seconds in the rows and become microsecond
timestamps here, in one vectorised step per column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from projections import schema
from projections.rows import Changes, Row

_ARROW: Final[dict[str, Any]] = {
    "VARCHAR": pa.string(),
    "BOOLEAN": pa.bool_(),
    "INTEGER": pa.int32(),
    "BIGINT": pa.int64(),
    "DOUBLE": pa.float64(),
    "BLOB": pa.binary(),
    "VARCHAR[]": pa.list_(pa.string()),
    "MAP(VARCHAR, VARCHAR)": pa.map_(pa.string(), pa.string()),
}
_MICROS: Final = 1_000_000.0


class Step(msgspec.Struct, frozen=True):
    """One statement of a batch: insert ``data`` into ``table``, or delete by ``key``.

    A delete removes the rows of ``table`` whose ``key`` is in ``data``'s column ``k``.
    """

    table: str
    data: Any  # a pyarrow Table
    key: str = ""  # set: a delete


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    """One batch, folded and converted: the steps of its transaction and its checkpoint."""

    generation: int  # the fold it came from; a fold reloaded after a failure makes it stale
    first_seq: int
    last_seq: int
    events: int
    unknown: int
    malformed: int
    steps: list[Step]


def prepare(changes: Changes, generation: int, first_seq: int) -> Prepared:
    """The steps that write ``changes``: deletes of replaced rows before their inserts."""
    steps: list[Step] = []
    _replace(steps, "_jobs_live", "job", changes.replaced_jobs, changes.live_rows())
    _insert(steps, "_jobs_done", changes.done_rows())
    _insert(steps, "job_transitions", changes.transitions)
    _insert(steps, "results", changes.results)
    _insert(steps, "set_aside_events", changes.set_aside)
    _replace(steps, "agents", "agent", changes.replaced_agents, changes.agent_rows())
    _replace(steps, "_agent_fold", "agent", changes.replaced_agents, changes.agent_fold_rows())
    return Prepared(
        generation=generation,
        first_seq=first_seq,
        last_seq=changes.last_seq,
        events=changes.events,
        unknown=changes.unknown,
        malformed=changes.malformed,
        steps=steps,
    )


def _replace(steps: list[Step], table: str, key: str, keys: set[str], rows: list[Row]) -> None:
    if keys:
        steps.append(Step(table, pa.table({"k": pa.array(list(keys), pa.string())}), key))
    _insert(steps, table, rows)


def _insert(steps: list[Step], table: str, rows: list[Row]) -> None:
    if rows:
        steps.append(Step(table, arrow(schema.FOLDED_TABLES[table], rows)))


def arrow(columns: Sequence[schema.Column], rows: Sequence[Row]) -> pa.Table:
    """Rows (tuples in ``columns`` order) as an Arrow table of the columns' types."""
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    arrays = [_array(column.sql, list(data)) for column, data in zip(columns, values, strict=True)]
    return pa.Table.from_arrays(arrays, names=[column.name for column in columns])


def _array(sql: str, data: list[Any]) -> pa.Array:
    if sql == "TIMESTAMP":  # float Unix seconds in, microseconds out
        micros = pc.round(pc.multiply(pa.array(data, pa.float64()), _MICROS))
        return micros.cast(pa.int64()).cast(pa.timestamp("us"))
    return pa.array(data, _ARROW[sql])
