"""The read models' shape: tables folded from the log, settings, and the views over them.

Pure data, no I/O: ``projections.runner`` executes it. Every table that holds rows folded from
the log is listed in ``FOLDED_TABLES`` with its columns in the order the row functions of
``projections.rows`` build them; the runner derives the Arrow types it ingests from the same
list, so a column is declared once. Times are ``TIMESTAMP`` in UTC; durations are seconds.

``VERSION`` names the shape: a database written under another version is dropped and rebuilt
from the log when a projector opens it. Bump it with any change to a table, a view or a fold.
"""

from __future__ import annotations

from typing import Final

import msgspec

from events.enums import Queue

VERSION: Final = 5
"""The projection's version; a database holding another one is rebuilt from the log.

4: reports from an agent that does not hold the attempt are set aside; 5: a completed job
carries no earlier attempt's failure reason.
"""


class Column(msgspec.Struct, frozen=True):
    """One column of a folded table: its name and DuckDB type."""

    name: str
    sql: str


def _columns(spec: str) -> tuple[Column, ...]:
    """``name TYPE, …`` (one per line) as columns."""
    lines = (line.strip().rstrip(",") for line in spec.splitlines())
    pairs = (line.split(None, 1) for line in lines if line)
    return tuple(Column(name, sql) for name, sql in pairs)


_RESULT_FIELDS: Final = """
    wall_s DOUBLE,
    frames BIGINT,
    encode_fps DOUBLE,
    speed DOUBLE,
    cpu_s DOUBLE,
    output_bytes BIGINT,
    bitrate_kbps DOUBLE,
    energy_j DOUBLE,
    psnr DOUBLE,
    ssim DOUBLE,
    vmaf DOUBLE,
    stalls BIGINT,
    frames_per_joule DOUBLE,
    frames_per_cpu_s DOUBLE,
    qoe DOUBLE
"""

JOBS: Final = _columns(
    """
    job VARCHAR,
    status VARCHAR,
    terminal BOOLEAN,
    scenario VARCHAR,
    encoder VARCHAR,
    engine VARCHAR,
    input VARCHAR,
    output VARCHAR,
    duration_s DOUBLE,
    queue VARCHAR,
    priority VARCHAR,
    max_retries INTEGER,
    timeout_s DOUBLE,
    approval_required BOOLEAN,
    quality_metrics VARCHAR[],
    labels MAP(VARCHAR, VARCHAR),
    preset VARCHAR,
    submitted_by VARCHAR,
    agent VARCHAR,
    gpu INTEGER,
    attempts INTEGER,
    retries INTEGER,
    budget_s DOUBLE,
    percent DOUBLE,
    submitted_at TIMESTAMP,
    queued_at TIMESTAMP,
    first_assigned_at TIMESTAMP,
    assigned_at TIMESTAMP,
    started_at TIMESTAMP,
    finished_at TIMESTAMP,
    retry_at TIMESTAMP,
    wait_s DOUBLE,
    run_s DOUBLE,
    failure_reason VARCHAR,
    failure_message VARCHAR,
    prompt VARCHAR,
    """
    + _RESULT_FIELDS
    + """,
    last_seq BIGINT,
    updated_at TIMESTAMP
    """
)
"""A job as the log says it is now: spec, placement, timings, last failure and results.

Stored in two tables that the view ``jobs`` joins: ``_jobs_done`` holds completed and rejected
jobs, which never change again, so it is only ever appended to; ``_jobs_live`` holds the rest,
with each one's fold state (``_state``, so a restart resumes without a replay), and a changed
job's row is deleted and inserted again there. A batch's deletes then scan the
jobs still in play, not the whole history (measured: 30 ms a batch at 100,000 jobs, growing
with them, when one table held every job).
"""

JOB_TRANSITIONS: Final = _columns(
    """
    seq BIGINT,
    job VARCHAR,
    from_status VARCHAR,
    to_status VARCHAR,
    changed_at TIMESTAMP,
    event_type VARCHAR,
    cause VARCHAR,
    agent VARCHAR,
    attempt INTEGER,
    reason VARCHAR,
    message VARCHAR
    """
)
"""Every change of a job's status, with the event that made it: the audit trail."""

RESULTS: Final = _columns(
    """
    seq BIGINT,
    job VARCHAR,
    attempt INTEGER,
    agent VARCHAR,
    completed_at TIMESTAMP,
    scenario VARCHAR,
    encoder VARCHAR,
    queue VARCHAR,
    duration_s DOUBLE,
    """
    + _RESULT_FIELDS
)
"""What each completed attempt measured."""

AGENTS: Final = _columns(
    """
    agent VARCHAR,
    status VARCHAR,
    hostname VARCHAR,
    cpu_model VARCHAR,
    cpu_cores INTEGER,
    ram_bytes BIGINT,
    gpus INTEGER,
    gpu_models VARCHAR[],
    gpu_memory_bytes BIGINT,
    nvenc_sessions INTEGER,
    encoders VARCHAR[],
    engines VARCHAR[],
    filters VARCHAR[],
    protocols VARCHAR[],
    ffmpeg_version VARCHAR,
    slots INTEGER,
    registered_at TIMESTAMP,
    last_seen TIMESTAMP,
    quarantined BOOLEAN,
    quarantine_reason VARCHAR,
    last_seq BIGINT
    """
)
"""An agent's capabilities flattened, and whether it is there."""

AGENT_FOLD: Final = _columns(
    """
    agent VARCHAR,
    state BLOB
    """
)
"""Internal: every agent's fold state (capabilities whole, not flattened)."""

SET_ASIDE: Final = _columns(
    """
    seq BIGINT,
    kind VARCHAR,
    type VARCHAR,
    reason VARCHAR
    """
)
"""Events the fold skipped: ``malformed`` (they do not decode), ``forged`` (stored where their
writer may not write them: ``events.admit``), ``not_holder`` (a report from an agent that does
not hold the attempt) or ``unknown`` (a type or version this code does not know, ``type`` names
it). The log keeps each one whole at ``seq`` (``ffrtmp events replay --from-seq``); this table
is where to find them."""

FOLDED_TABLES: Final[dict[str, tuple[Column, ...]]] = {
    "_jobs_live": (*JOBS, Column("_state", "BLOB")),
    "_jobs_done": JOBS,
    "job_transitions": JOB_TRANSITIONS,
    "results": RESULTS,
    "agents": AGENTS,
    "_agent_fold": AGENT_FOLD,
    "set_aside_events": SET_ASIDE,
}

CHECKPOINT_DDL: Final = """
CREATE TABLE _checkpoint (
    version INTEGER NOT NULL,
    stream VARCHAR NOT NULL,
    seq BIGINT NOT NULL,
    events BIGINT NOT NULL,
    unknown_events BIGINT NOT NULL,
    malformed_events BIGINT NOT NULL,
    applied_at TIMESTAMP
)
"""
"""One row: the last stream sequence applied, committed with the rows it produced."""

SETTINGS_DDL: Final = (
    "CREATE TABLE sla_targets (queue VARCHAR, max_wait_s DOUBLE, max_run_s DOUBLE)",
    """CREATE TABLE cost_rates (
        energy_price_per_kwh DOUBLE, compute_price_per_hour DOUBLE, currency VARCHAR)""",
    """CREATE TABLE scenarios (name VARCHAR, width INTEGER, height INTEGER, fps INTEGER,
        codec VARCHAR, encoder VARCHAR, bitrate_kbps INTEGER, needs_gpu BOOLEAN)""",
)
"""Tables not folded from the log: written from ``ProjectionSettings`` each time one opens."""

VIEWS: Final[dict[str, str]] = {
    "jobs": "SELECT * EXCLUDE (_state) FROM _jobs_live UNION ALL SELECT * FROM _jobs_done",
    "projection_status": """
        SELECT version, seq AS checkpoint_seq, events, unknown_events, malformed_events,
               applied_at
        FROM _checkpoint""",
    "queue_depth": """
        SELECT queue, priority,
               count(*) FILTER (WHERE status = 'queued') AS queued,
               count(*) FILTER (WHERE status = 'retrying') AS retrying,
               count(*) FILTER (WHERE status = 'pending') AS pending,
               count(*) FILTER (WHERE status = 'paused') AS paused,
               min(queued_at) FILTER (WHERE status = 'queued') AS oldest_queued_at
        FROM jobs WHERE NOT terminal
        GROUP BY queue, priority""",
    "failure_reasons": """
        SELECT reason,
               reason NOT IN ('user_error', 'capability_mismatch') AS platform,
               count(*) FILTER (WHERE to_status IN ('failed', 'rejected')) AS failed_jobs,
               count(*) FILTER (WHERE to_status = 'retrying') AS retries,
               max(changed_at) AS last_at,
               arg_max(message, seq) AS last_message
        FROM job_transitions
        WHERE reason IS NOT NULL AND to_status IN ('failed', 'rejected', 'retrying')
        GROUP BY reason""",
    "job_time_percentiles": """
        SELECT queue,
               count(wait_s) AS placed,
               quantile_cont(wait_s, 0.5) AS wait_p50_s,
               quantile_cont(wait_s, 0.95) AS wait_p95_s,
               quantile_cont(wait_s, 0.99) AS wait_p99_s,
               count(run_s) AS finished,
               quantile_cont(run_s, 0.5) AS run_p50_s,
               quantile_cont(run_s, 0.95) AS run_p95_s,
               quantile_cont(run_s, 0.99) AS run_p99_s
        FROM jobs GROUP BY queue""",
    "throughput_per_minute": """
        SELECT date_trunc('minute', changed_at) AS minute,
               count(*) FILTER (WHERE from_status = 'new') AS submitted,
               count(*) FILTER (WHERE to_status = 'completed') AS completed,
               count(*) FILTER (WHERE to_status = 'failed') AS failed,
               count(*) FILTER (WHERE to_status = 'canceled') AS canceled,
               count(*) FILTER (WHERE to_status = 'rejected') AS rejected,
               count(*) FILTER (WHERE to_status = 'retrying') AS retried
        FROM job_transitions GROUP BY minute""",
    "sla_compliance": """
        SELECT j.queue, t.max_wait_s, t.max_run_s,
               count(j.wait_s) AS placed,
               count(*) FILTER (WHERE j.wait_s <= t.max_wait_s) AS wait_met,
               count(*) FILTER (WHERE j.wait_s <= t.max_wait_s) / nullif(count(j.wait_s), 0)
                   AS wait_compliance,
               count(*) FILTER (WHERE j.status = 'completed') AS completed,
               count(*) FILTER (WHERE j.status = 'completed' AND j.run_s <= t.max_run_s)
                   AS run_met,
               count(*) FILTER (WHERE j.status = 'completed' AND j.run_s <= t.max_run_s)
                   / nullif(count(*) FILTER (WHERE j.status = 'completed'), 0)
                   AS run_compliance,
               count(*) FILTER (WHERE j.status = 'failed'
                   AND j.failure_reason IS DISTINCT FROM 'user_error') AS platform_failures,
               count(*) FILTER (WHERE j.status = 'failed'
                   AND j.failure_reason = 'user_error') AS user_errors,
               count(*) FILTER (WHERE j.status = 'rejected') AS rejected,
               count(*) FILTER (WHERE j.status = 'completed' AND j.run_s <= t.max_run_s
                   AND j.wait_s <= t.max_wait_s)
                   / nullif(count(*) FILTER (WHERE j.status = 'completed'
                       OR (j.status = 'failed'
                           AND j.failure_reason IS DISTINCT FROM 'user_error')), 0)
                   AS sla_compliance
        FROM jobs j LEFT JOIN sla_targets t USING (queue)
        GROUP BY j.queue, t.max_wait_s, t.max_run_s""",
    "job_costs": """
        SELECT r.job, r.attempt, r.scenario, r.encoder, r.agent, r.queue, r.completed_at,
               r.energy_j / 3.6e6 AS energy_kwh,
               coalesce(r.energy_j / 3.6e6, 0) * c.energy_price_per_kwh AS energy_cost,
               r.wall_s / 3600 AS compute_hours,
               r.wall_s / 3600 * c.compute_price_per_hour AS compute_cost,
               coalesce(r.energy_j / 3.6e6, 0) * c.energy_price_per_kwh
                   + r.wall_s / 3600 * c.compute_price_per_hour AS cost,
               r.duration_s / 3600 AS output_hours,
               s.width::DOUBLE * s.height * r.frames / 1e6 AS megapixels,
               c.currency
        FROM results r CROSS JOIN cost_rates c LEFT JOIN scenarios s ON s.name = r.scenario""",
    "cost_summary": """
        SELECT scenario, encoder, currency,
               count(*) AS jobs,
               sum(energy_kwh) AS energy_kwh,
               sum(cost) AS cost,
               sum(cost) / count(*) AS cost_per_job,
               sum(cost) / nullif(sum(output_hours), 0) AS cost_per_output_hour,
               sum(cost) / nullif(sum(megapixels), 0) AS cost_per_megapixel
        FROM job_costs GROUP BY scenario, encoder, currency""",
    "agent_load": """
        SELECT a.agent, a.status, a.quarantined, a.slots,
               count(j.job) FILTER (WHERE j.status IN ('assigned', 'running', 'paused'))
                   AS active_jobs,
               a.slots - count(j.job) FILTER (WHERE j.status IN ('assigned', 'running', 'paused'))
                   AS free_slots,
               count(j.job) FILTER (WHERE j.status = 'completed') AS completed,
               count(j.job) FILTER (WHERE j.status = 'failed') AS failed,
               a.last_seen
        FROM agents a LEFT JOIN jobs j ON j.agent = a.agent
        GROUP BY a.agent, a.status, a.quarantined, a.slots, a.last_seen""",
}
"""Questions asked often enough to name; each reads only the tables above."""


class ProjectionSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Targets and prices the views compare against.

    Not from the log, so changing them costs no rebuild. ``sla`` maps a queue to (max queue
    wait s, max processing s).
    """

    energy_price_per_kwh: float = 0.15
    compute_price_per_hour: float = 0.10  # per busy slot-hour of wall time
    currency: str = "USD"
    sla: dict[str, tuple[float, float]] = msgspec.field(
        default_factory=lambda: {
            Queue.LIVE.value: (5.0, 120.0),
            Queue.DEFAULT.value: (60.0, 3600.0),
            Queue.BATCH.value: (3600.0, 86400.0),
        }
    )


def create_table(name: str, columns: tuple[Column, ...]) -> str:
    """The ``CREATE TABLE`` of a folded table."""
    return f"CREATE TABLE {name} ({', '.join(f'{c.name} {c.sql}' for c in columns)})"


def all_tables() -> tuple[str, ...]:
    """Every table a projection owns, for a drop before a rebuild."""
    return (*FOLDED_TABLES, "_checkpoint", "sla_targets", "cost_rates", "scenarios")
