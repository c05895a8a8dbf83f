"""``ffrtmp jobs list|status|history``: jobs as the log says they are, were, and became.

``list`` asks a projector, or folds the whole log here with ``events.job.evolve`` (the
scheduler's own fold) when none answers (``joblist``). ``status --at`` is time travel: the
job's events folded up to a stream sequence or a time. ``history`` prints each event with its
writer, taken from the subject it was stored on (``<prefix>.evt.job.<job>.<writer>``), and
what it changed.
"""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
import typer
from rich.table import Table

from events.enums import JobStatus, Priority, Queue
from events.job import JobState
from events.spec import duration_words
from events.work import RunningJob
from ffrtmp.cli.common import (
    NatsOpt,
    OutputOpt,
    PrefixOpt,
    Target,
    ago,
    console,
    echo_json,
    explained,
    run,
    target,
    when,
)
from ffrtmp.cli.follow import OUTCOME_EXIT, ProgressView
from ffrtmp.client import joblist
from ffrtmp.client.conn import connect
from ffrtmp.client.follow import follow_job
from ffrtmp.client.joblist import JobFilter, Listing
from ffrtmp.client.jobs import HistoryEntry, JobLog, StatusJson, job_history, job_log, job_status
from ffrtmp.client.read import resolve_job
from ffrtmp.client.render import (
    failure,
    results_line,
    styled,
)
from ffrtmp.client.times import parse_time

IdArg = Annotated[str, typer.Argument(help="Job id, or any unique prefix of it.")]


# --- list ----------------------------------------------------------------------------------


def list_jobs(
    state: Annotated[
        list[JobStatus] | None, typer.Option("--state", "-s", help="Only these states (repeat).")
    ] = None,
    queue: Annotated[Queue | None, typer.Option(help="Only this queue.")] = None,
    priority: Annotated[Priority | None, typer.Option(help="Only this priority.")] = None,
    agent: Annotated[
        str | None, typer.Option(help="Only jobs held by this agent (prefix).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Submitted since: 10m, 2h, 1d or an ISO time.")
    ] = None,
    limit: Annotated[int, typer.Option(help="Newest N jobs; 0 for all.")] = 50,
    local: Annotated[
        bool, typer.Option("--local", help="Fold the log here instead of asking a projector.")
    ] = False,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """List jobs, newest first, with their failure reasons (from a projector, else the log).

    Example: ffrtmp jobs list --state failed --since 1h
    """
    where = target(nats, prefix, output)
    now = time.time()
    with explained():
        since_ts = None if since is None else parse_time(since, now)
    wanted = JobFilter(
        states=frozenset(str(s) for s in state or ()),
        queue=queue,
        priority=priority,
        agent=agent,
        since=since_ts,
        limit=max(0, limit),
    )
    listing = run(_listing(where, wanted, local))
    if where.json:
        echo_json(listing.rows)
        return
    _print_rows(listing, now)


async def _listing(where: Target, wanted: JobFilter, local: bool) -> Listing:
    async with connect(where) as conn:
        return await joblist.list_jobs(conn, wanted, local=local)


def _print_rows(listing: Listing, now: float) -> None:
    table = Table("ID", "STATUS", "SCENARIO", "QUEUE", "PRIORITY", "AGENT", "TRY", "PROGRESS",
                  "SUBMITTED", "FAILURE REASON", box=None, pad_edge=False)  # fmt: skip
    for row in listing.rows:
        why = f"{row.reason}: {row.message}" if row.reason and row.message else row.reason
        table.add_row(
            row.id, styled(row.status), row.scenario, row.queue, row.priority, row.agent,
            str(row.attempt or ""), f"{row.percent:.0f}%", ago(row.submitted_at, now) + " ago",
            why or row.message,
        )  # fmt: skip
    out = console()
    out.print(table)
    cut = f", cut at {len(listing.rows)} rows" if listing.truncated else ""
    shown = f"{len(listing.rows)} of {listing.matching} jobs"
    if listing.matching != listing.total:
        shown += f" matching, {listing.total} in all"
    out.print(f"{shown} (from {listing.source}{cut})", style="dim")


# --- status --------------------------------------------------------------------------------


def _until(at: str, now: float) -> tuple[int | None, float | None]:
    if at.isdigit():
        return int(at), None
    return None, parse_time(at, now, "--at")


async def _status(where: Target, typed: str, at: str | None) -> StatusJson:
    upto_seq, upto_time = _until(at, time.time()) if at is not None else (None, None)
    async with connect(where) as conn:
        job = await resolve_job(conn, typed)
        return await job_status(conn, job, upto_seq=upto_seq, upto_time=upto_time)


def _fields(state: JobState, live: RunningJob | None, command: str) -> list[tuple[str, str]]:
    spec = state.spec
    rows = [("Job ID", state.job), ("Status", styled(str(state.status)))]
    if spec is not None:
        rows += [
            ("Scenario", spec.scenario),
            ("Queue", str(spec.queue)),
            ("Priority", str(spec.priority)),
            ("Input", spec.input),
            ("Output", spec.output),
            ("Duration", duration_words(spec)),
        ]
    percent = live.percent if live is not None else state.percent
    rows += [("Progress", f"{percent:.0f}%" + _media_done(live))]
    if live is not None:
        fps = "" if live.fps is None else f"{live.fps:.1f} fps"
        speed = "" if live.speed is None else f"{live.speed:.2f}x"
        rows.append(("Live", " ".join(filter(None, [fps, speed])) or "no figures yet"))
    rows += [
        ("Node ID", state.agent),
        ("Attempt", str(state.attempt)),
        ("Retries", str(state.retries)),
        ("Submitted", when(state.submitted_at)),
        ("Started", when(state.started_at)),
        ("Finished", when(state.finished_at)),
        ("Failure reason", failure(state)),
        ("Retry at", when(state.retry_at or 0.0)),
        ("Prompt", state.prompt),
        ("Results", results_line(state.results) if state.results else ""),
        ("Command", command),
    ]
    return [(name, value) for name, value in rows if value]


def _print_status(
    state: JobState, live: RunningJob | None, seq: int, at: str | None, command: str
) -> None:
    table = Table("Field", "Value")
    for name, value in _fields(state, live, command):
        table.add_row(name, value)
    out = console()
    out.print(table)
    where = f"as of log sequence {seq}" + (f" (--at {at})" if at else "")
    out.print(where, style="dim")


def status(
    job_id: IdArg,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Live progress until the job ends.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(help="Time travel: the job as of a log sequence (123) or time (10m, ISO)."),
    ] = None,
    timeout_s: Annotated[
        float | None, typer.Option(help="With --follow: give up (exit 5) after this long.")
    ] = None,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """Show a job: state, where it runs, progress with fps and speed, why it failed.

    With --follow the exit code is the outcome: 0 completed, 3 failed, 4 canceled or rejected.

    Example: ffrtmp jobs status 01k2 --follow
    """
    where = target(nats, prefix, output)
    found = run(_status(where, job_id, at))
    if follow and at is None:
        raise typer.Exit(watch(where, found.job.job, timeout_s))
    if where.json:
        echo_json(found)
        return
    _print_status(found.job, found.live, found.seq, at, found.command)


def watch(where: Target, job: str, timeout_s: float | None) -> int:
    """Follow a job to its end with a live bar (JSON: one state per change); its exit code."""

    async def go() -> JobState:
        async with connect(where) as conn:
            if where.json:
                return await follow_job(conn, job, _json_line, timeout_s)
            view = ProgressView(console(), job)
            with view.progress:
                return await follow_job(conn, job, view.show, timeout_s)

    state = run(go())  # a timeout is rendered by run() as one line and exit 5
    if not where.json:
        typer.echo(f"job {job} {state.status}" + (f": {failure(state)}" if failure(state) else ""))
    return OUTCOME_EXIT.get(state.status, 0)


_last_json: list[bytes] = []


def _json_line(state: JobState, live: RunningJob | None, seq: int) -> None:
    line = msgspec.json.encode(StatusJson(job=state, live=live, seq=seq))
    if not _last_json or _last_json[-1] != line:
        _last_json[:] = [line]
        typer.echo(line.decode())


# --- history -------------------------------------------------------------------------------


async def _history(where: Target, typed: str) -> tuple[str, list[HistoryEntry]]:
    async with connect(where) as conn:
        job = await resolve_job(conn, typed)
        return job, await job_history(conn, job)


def history(
    job_id: IdArg,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """Every event of a job: when, who wrote it (sched or an agent), what it changed.

    Example: ffrtmp jobs history 01k2
    """
    where = target(nats, prefix, output)
    job, found = run(_history(where, job_id))
    if where.json:
        echo_json(found)
        return
    table = Table("SEQ", "TIME", "WRITER", "EVENT", "CHANGED", "DETAIL", box=None, pad_edge=False)
    for item in found:
        table.add_row(
            str(item.seq), when(item.at), item.writer, item.type, item.changes, item.detail
        )
    out = console()
    out.print(table)
    out.print(f"{len(found)} events of job {job}", style="dim")


# --- logs ----------------------------------------------------------------------------------


async def _logs(where: Target, typed: str, attempt: int | None) -> JobLog:
    async with connect(where) as conn:
        return await job_log(conn, await resolve_job(conn, typed), attempt)


def logs(
    job_id: IdArg,
    attempt: Annotated[
        int | None, typer.Option(help="Which attempt [default: the latest].")
    ] = None,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """FFmpeg's output (the end of its stderr) for one attempt, kept by the agent that ran it.

    Example: ffrtmp jobs logs 01k2 --attempt 2
    """
    where = target(nats, prefix, output)
    found = run(_logs(where, job_id, attempt))
    if where.json:
        echo_json(found)
        return
    typer.echo(found.log, nl=not found.log.endswith("\n"))


def _media_done(live: RunningJob | None) -> str:
    """`` (12.0 s of 60 s)``: the media done, and of how much when that is known."""
    if live is None or live.out_time_s is None:
        return ""
    whole = "" if live.media_s is None else f" of {live.media_s:g} s"
    return f" ({live.out_time_s:.1f} s{whole})"
