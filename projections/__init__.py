"""DuckDB read models folded from the event log: tables, views, and read-only SQL over them.

The library API (kept stable; the exporter and the CLI build on it)::

    from projections import Projector, catch_up, follow

    projector = Projector("farm.duckdb", prefix="ffrtmp")  # or ":memory:"; ProjectionSettings
    projector.apply([(seq, event), ...])   # one DuckDB transaction: rows + checkpoint
    projector.apply_raw([(seq, data), ...])  # the same from stream bytes; junk is counted
    projector.prepare(batch) -> Prepared | None  # apply in two steps: fold + Arrow (Python) …
    projector.commit(prepared) -> int      # … then the transaction (DuckDB); commit in order
    projector.checkpoint() -> int          # last stream sequence applied, 0 when none
    projector.status() -> Status           # checkpoint, events, unknown and malformed counts
    projector.query(sql, params, limit=None) -> QueryResult  # read-only, from any thread
    projector.reset()                      # drop every row: the next apply starts from seq 1
    await catch_up(projector, nc)          # apply up to the stream's end as of now
    await follow(projector, nc)            # apply from checkpoint + 1 until cancelled

``QueryResult`` has ``columns``, ``types`` (DuckDB type names), ``rows`` (lists), ``truncated``
and ``records()``. ``query`` raises ``QueryRefused`` for anything but one SELECT (writes, DDL,
ATTACH, COPY, PRAGMA, SET, INSTALL/LOAD, file access) and ``QueryFailed`` (one line, with the
position) for what DuckDB rejects; both are ``FfrtmpError``.

Tables (``projections.schema`` declares them): ``jobs`` (one row per job: status, every spec
field, agent, attempts, timings with ``wait_s`` and ``run_s``, last failure, results),
``job_transitions`` (every status change with its event, cause and stream ``seq``), ``results``
(one row per completed attempt), ``agents`` (capabilities flattened, status, slots, last seen,
quarantine). Views: ``queue_depth``, ``failure_reasons``, ``job_time_percentiles``,
``throughput_per_minute``, ``sla_compliance``, ``job_costs``, ``cost_summary``, ``agent_load``,
``projection_status``. Settings tables, written from ``ProjectionSettings`` on every open:
``sla_targets``, ``cost_rates``, ``scenarios``.

Layers: ``rows`` is the pure fold (events in, rows out), ``batch`` turns its rows into Arrow
tables, ``runner`` is the DuckDB edge, ``query`` the read-only fence, ``follow`` the stream
edge, ``service`` the NATS request/reply face.
"""

from projections.follow import catch_up, follow
from projections.query import QueryFailed, QueryRefused, QueryResult
from projections.runner import Projector, Status
from projections.schema import VERSION, ProjectionSettings

__all__ = [
    "VERSION",
    "ProjectionSettings",
    "Projector",
    "QueryFailed",
    "QueryRefused",
    "QueryResult",
    "Status",
    "catch_up",
    "follow",
]
