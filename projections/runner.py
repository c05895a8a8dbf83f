"""The projection runner: one DuckDB database, batches of events in, one transaction each.

``Projector.apply`` folds a batch with ``projections.rows.Fold`` and writes what changed through
Arrow tables registered into DuckDB (``INSERT … SELECT``; a changed row is deleted and inserted
again), together with the checkpoint row, in one transaction: a crash before the commit leaves
the previous batch and its checkpoint, a crash after it leaves this one, so no event is lost or
applied twice. Events at or below the checkpoint are skipped. Row-at-a-time ``executemany`` is
about a hundred times slower here, so nothing goes in by the row.

The database is opened with ``enable_external_access=false``: the projector writes only its own
file, and questions (``query``) cannot read others. A database written under another
``schema.VERSION`` or from another stream is dropped and rebuilt (checkpoint 0) on open.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pyarrow as pa  # type: ignore[import-untyped]

from events.admit import read_event
from events.base import SetAside
from events.codec import Decoded
from events.errors import FfrtmpError
from events.scenarios import SCENARIOS
from events.subjects import DEFAULT_PREFIX, Subjects
from projections import schema
from projections.batch import Prepared, Step, prepare
from projections.query import QueryResult, run_read_only
from projections.rows import Fold, Item, Row, decode_agent, decode_tracked

log = logging.getLogger(__name__)


class Status(msgspec.Struct, frozen=True, kw_only=True):
    """Where a projection is: the last sequence applied and what it has counted."""

    version: int
    stream: str
    seq: int
    events: int
    unknown_events: int
    malformed_events: int


class Projector:
    """A projection of one prefix's events stream in one DuckDB database (file or memory).

    ``apply`` is meant for one writer (one thread at a time; a lock enforces it); ``query`` may
    be called from any thread, each call on a cursor of its own.
    """

    def __init__(
        self,
        db: str | Path = ":memory:",
        prefix: str = DEFAULT_PREFIX,
        settings: schema.ProjectionSettings | None = None,
    ) -> None:
        """Open (or create) the database; rebuild it when its version or stream differ."""
        self.db = str(db)
        self.subjects = Subjects(prefix)
        self.stream = self.subjects.events_stream
        self.settings = settings or schema.ProjectionSettings()
        try:
            if self.db != ":memory:":  # a new database may name a directory not made yet
                Path(self.db).parent.mkdir(parents=True, exist_ok=True)
            self._con = duckdb.connect(self.db, config={"enable_external_access": False})
        except OSError as exc:
            raise FfrtmpError(f"cannot create the projection database {self.db}: {exc}") from exc
        except duckdb.Error as exc:
            hint = "; is a projector running on it? stop it first" if "lock" in str(exc) else ""
            raise FfrtmpError(
                f"cannot open the projection database {self.db}: {exc}{hint}"
            ) from exc
        self._reader = self._con.cursor()
        self._lock = threading.Lock()  # the database's writer
        self._fold_lock = threading.Lock()  # the fold's memory
        self._cursor_lock = threading.Lock()
        self._generation = 0
        self.rebuilt = self._open()
        self._fold = self._load()
        self._seq = self._folded = self._checkpoint()

    # lifecycle

    def _open(self) -> bool:
        """Keep a database of this version and stream; else drop everything and create it."""
        found = self._con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = '_checkpoint'"
        ).fetchone()
        if found is not None and found[0]:
            row = self._con.execute("SELECT version, stream FROM _checkpoint").fetchone()
            if row == (schema.VERSION, self.stream):
                self._write_settings()
                return False
        self._create()
        return True

    def _create(self) -> None:
        con = self._con
        con.begin()
        for (name,) in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal")\
                .fetchall():  # fmt: skip
            con.execute(f'DROP VIEW "{name}"')
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            con.execute(f'DROP TABLE "{name}"')
        for name, columns in schema.FOLDED_TABLES.items():
            con.execute(schema.create_table(name, columns))
        con.execute(schema.CHECKPOINT_DDL)
        con.execute(
            "INSERT INTO _checkpoint VALUES (?, ?, 0, 0, 0, 0, NULL)",
            [schema.VERSION, self.stream],
        )
        for ddl in schema.SETTINGS_DDL:
            con.execute(ddl)
        for name, body in schema.VIEWS.items():
            con.execute(f"CREATE VIEW {name} AS {body}")
        con.commit()
        self._write_settings()

    def _write_settings(self) -> None:
        """Targets, prices and the scenario catalogue, replaced on every open."""
        con, s = self._con, self.settings
        con.begin()
        con.execute("DELETE FROM sla_targets")
        con.execute("DELETE FROM cost_rates")
        con.execute("DELETE FROM scenarios")
        sla = [(queue, wait, run) for queue, (wait, run) in s.sla.items()]
        _insert(con, "sla_targets", ["queue", "max_wait_s", "max_run_s"], sla)
        con.execute(
            "INSERT INTO cost_rates VALUES (?, ?, ?)",
            [s.energy_price_per_kwh, s.compute_price_per_hour, s.currency],
        )
        catalogue = [msgspec.structs.astuple(sc) for sc in SCENARIOS.values()]
        fields = list(next(iter(SCENARIOS.values())).__struct_fields__)
        _insert(con, "scenarios", fields, catalogue)
        con.commit()

    def _load(self) -> Fold:
        """The fold's memory, from what the database holds."""
        found = self._con.execute("SELECT job, _state FROM _jobs_live").fetchall()
        live = {job: decode_tracked(state) for job, state in found}
        agents = {agent: decode_agent(state) for agent, state in self._rows("_agent_fold")}
        done = {job for (job,) in self._con.execute("SELECT job FROM _jobs_done").fetchall()}
        return Fold(live, done, agents)

    def _rows(self, table: str) -> list[tuple[Any, ...]]:
        return self._con.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 -- our names

    def reset(self) -> None:
        """Drop every row and the checkpoint: the next apply starts from sequence 1."""
        with self._lock, self._fold_lock:
            self._create()
            self._fold = Fold()
            self._seq = self._folded = 0
            self._generation += 1

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._reader.close()
            self._con.close()

    # writing

    def apply(self, batch: Sequence[Item]) -> int:
        """Fold and write a batch with its checkpoint in one transaction; the new checkpoint."""
        prepared = self.prepare(batch)
        return self._seq if prepared is None else self.commit(prepared)

    def apply_raw(self, batch: Sequence[tuple[int, str, bytes]]) -> int:
        """``apply`` for messages as the stream holds them; a set-aside one is counted."""
        return self.apply([(seq, _decode(seq, subject, data)) for seq, subject, data in batch])

    def prepare(self, batch: Sequence[Item]) -> Prepared | None:
        """Fold a batch into the memory and convert what it changed; None if all applied.

        The fold runs ahead of the database until ``commit``; batches must be committed in
        the order they were prepared.
        """
        with self._fold_lock:
            fresh = [item for item in batch if item[0] > self._folded]
            if not fresh:
                return None
            prepared = prepare(self._fold.apply(fresh), self._generation, fresh[0][0])
            self._folded = prepared.last_seq
            return prepared

    def prepare_raw(self, batch: Sequence[tuple[int, str, bytes]]) -> Prepared | None:
        """``prepare`` for messages as the stream holds them."""
        return self.prepare([(seq, _decode(seq, subject, data)) for seq, subject, data in batch])

    def commit(self, prepared: Prepared) -> int:
        """Write a prepared batch and its checkpoint in one transaction; the new checkpoint."""
        with self._lock:
            if prepared.generation != self._generation or prepared.first_seq <= self._seq:
                raise FfrtmpError(
                    f"batch {prepared.first_seq}-{prepared.last_seq} was prepared before a failed"
                    f" commit or out of order (checkpoint {self._seq}); follow again from it"
                )
            try:
                self._write(prepared)
            except BaseException:
                with self._fold_lock:  # the transaction rolled back: so does the memory
                    self._fold, self._folded = self._load(), self._seq
                    self._generation += 1
                raise
            self._seq = prepared.last_seq
            return self._seq

    def _write(self, prepared: Prepared) -> None:
        con = self._con
        con.begin()
        try:
            for step in prepared.steps:
                con.execute(_statement(con, step))
            con.execute(
                "UPDATE _checkpoint SET seq = ?, events = events + ?, "
                "unknown_events = unknown_events + ?, malformed_events = malformed_events + ?, "
                "applied_at = now()::TIMESTAMP",
                [prepared.last_seq, prepared.events, prepared.unknown, prepared.malformed],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise

    # reading

    def checkpoint(self) -> int:
        """The last stream sequence applied (0: nothing yet), as of the last commit."""
        return self._seq

    def _checkpoint(self) -> int:
        row = self._con.execute("SELECT seq FROM _checkpoint").fetchone()
        return int(row[0]) if row is not None else 0

    def status(self) -> Status:
        """The checkpoint row."""
        with self._cursor() as cur:
            row = cur.execute(
                "SELECT version, stream, seq, events, unknown_events, malformed_events "
                "FROM _checkpoint"
            ).fetchone()
        if row is None:
            raise FfrtmpError(f"{self.db} has no checkpoint row; rebuild it")
        return Status(
            version=row[0],
            stream=row[1],
            seq=row[2],
            events=row[3],
            unknown_events=row[4],
            malformed_events=row[5],
        )

    def query(
        self, sql: str, params: Sequence[object] | None = None, *, limit: int | None = None
    ) -> QueryResult:
        """Run one read-only statement; writes, DDL and file access raise ``QueryRefused``."""
        with self._cursor() as cur:
            return run_read_only(cur, sql, params, limit)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[Callable[[str], list[list[Any]]]]:
        """Our own queries (unchecked: never an asker's), all in one read transaction.

        Every answer then comes from the same committed batch, as a scrape needs.
        """
        with self._cursor() as cur:
            cur.begin()
            try:
                yield lambda sql: [list(row) for row in cur.execute(sql).fetchall()]
            finally:
                cur.rollback()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the caller's own (DuckDB connections are not shared across threads)."""
        with self._cursor_lock:
            return self._reader.cursor()


def _decode(seq: int, subject: str, data: bytes) -> Decoded:
    event = read_event(subject, data)
    if isinstance(event, SetAside):
        log.warning("event %d on %s set aside, counted and skipped: %s", seq, subject, event.reason)
    return event


def _statement(con: duckdb.DuckDBPyConnection, step: Step) -> str:
    """Register a step's Arrow table and say what to do with it.

    The table stays registered under a name of its own (the next batch replaces it; other
    cursors cannot see it): one call fewer per step.
    """
    name = f"_new{step.table}"
    con.register(name, step.data)
    if step.key:
        return f"DELETE FROM {step.table} WHERE {step.key} IN (SELECT k FROM {name})"  # noqa: S608
    return f"INSERT INTO {step.table} BY NAME SELECT * FROM {name}"  # noqa: S608


def _insert(
    con: duckdb.DuckDBPyConnection, table: str, names: list[str], rows: Sequence[Row]
) -> None:
    """Plain rows (types inferred) into a settings table."""
    if rows:
        columns = list(zip(*rows, strict=True))
        data = pa.Table.from_arrays([pa.array(list(c)) for c in columns], names=names)
        _ingest(con, table, data)


def _ingest(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
    """Insert an Arrow table.

    It stays registered under a name of its own (the next batch replaces it; other cursors
    cannot see it): one call fewer per table and batch.
    """
    con.register(f"_new{table}", data)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _new{table}")  # noqa: S608
