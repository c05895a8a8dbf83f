"""A projection against a fresh rebuild from the log: the read models must be exactly the fold.

The stored projection (a DuckDB file a projector wrote, incrementally, across restarts and
kills) and a new in-memory one are both brought to the stream's end as of now, then every
folded table is compared row for row. A difference means the incremental path (batches,
checkpoints, crash recovery) disagrees with a replay: a broken promise, reported as a
``projection`` violation. The file must not be open in a running projector (DuckDB locks it):
check a stopped projector's file, or a copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nats.aio.client import Client as NatsClient

from ffrtmp.check.invariants import Kind, Violation
from projections.follow import catch_up
from projections.runner import Projector
from projections.schema import FOLDED_TABLES


def _rows(projector: Projector, table: str) -> list[str]:
    """A table's rows in one order, each as text (values may be lists, which do not hash)."""
    result = projector.query(f"SELECT * FROM {table} ORDER BY ALL")  # noqa: S608 -- our names
    return [repr(row) for row in result.rows]


def differences(stored: Projector, fresh: Projector, tables: Sequence[str]) -> list[Violation]:
    """Every table whose rows differ between the two, named with how many rows differ."""
    found = []
    for table in tables:
        ours, theirs = _rows(stored, table), _rows(fresh, table)
        if ours != theirs:
            extra, missing = set(ours) - set(theirs), set(theirs) - set(ours)
            found.append(
                Violation(
                    kind=Kind.PROJECTION,
                    job="-",
                    seq=stored.checkpoint(),
                    message=f"table {table}: {len(extra)} rows not in a fresh rebuild, "
                    f"{len(missing)} rows of the rebuild missing",
                )
            )
    return found


async def check_projection(nc: NatsClient, db: Path, prefix: str) -> list[Violation]:
    """Bring the stored projection and a fresh one to the log's end; compare every table."""
    stored = Projector(db, prefix)
    fresh = Projector(":memory:", prefix)
    try:
        await catch_up(stored, nc)
        await catch_up(fresh, nc)
        if stored.checkpoint() != fresh.checkpoint():  # the log grew between the two reads
            await catch_up(stored, nc)
            await catch_up(fresh, nc)
        return differences(stored, fresh, list(FOLDED_TABLES))
    finally:
        stored.close()
        fresh.close()
