"""``ffrtmp demo``: a realistic mix of jobs on a running farm, watched until every one has ended.

Short libx264 encodes of test patterns in each queue and at each priority; an NVENC job that a
farm without NVIDIA GPUs rejects at once, saying what is missing; a job whose input file does
not exist, which fails as ``user_error`` (not retried: retrying cannot fix it); and a job that
waits for approval, which the demo approves. It ends with a summary and the three commands that
answer "why did job X fail, and where did it run?".
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from typing import Annotated, Final

import msgspec
import typer
from rich.live import Live
from rich.table import Table

from agent.logs import read_log
from events.commands import RespondToJob, SubmitJob
from events.enums import STARTED_STATUSES, TERMINAL_STATUSES, JobStatus, Priority, Queue
from events.errors import FfrtmpError
from events.job import JobState
from events.spec import JobSpec, validate
from events.subjects import DEFAULT_PREFIX
from events.work import Heartbeat
from ffrtmp.cli.common import (
    DEFAULT_NATS,
    EXIT_WAITING,
    NatsOpt,
    OutputOpt,
    PrefixOpt,
    Target,
    console,
    echo_json,
    operator,
    run,
    target,
)
from ffrtmp.client.conn import Conn, command_id, connect
from ffrtmp.client.decision import scheduler_leads
from ffrtmp.client.follow import live_of
from ffrtmp.client.read import fold_agents, heartbeat, load_job
from ffrtmp.client.render import failure, styled

S = JobStatus
MISSING_INPUT: Final = "/nonexistent/ffrtmp-demo/missing-input.mp4"
REFRESH_S: Final = 0.5


class DemoJob(msgspec.Struct, frozen=True, kw_only=True):
    """One job of the mix and what it shows."""

    name: str
    spec: JobSpec
    shows: str


def _spec(
    scenario: str,
    queue: Queue,
    priority: Priority,
    seconds: float,
    *,
    source: str = "testsrc2",
    prompt: str = "",
) -> JobSpec:
    spec = JobSpec(
        scenario=scenario,
        queue=queue,
        priority=priority,
        duration_s=seconds,
        input=source,
        approval_required=bool(prompt),
        approval_prompt=prompt,
    )
    return validate(spec)


def mix(seconds: float) -> list[DemoJob]:
    """The demo's jobs: ``seconds`` of media each, in submission order."""
    q, p = Queue, Priority
    return [
        DemoJob(name="default-medium", spec=_spec("480p-h264", q.DEFAULT, p.MEDIUM, seconds),
                shows="default queue: takes a free slot at once"),
        DemoJob(name="batch-medium", spec=_spec("480p-h264", q.BATCH, p.MEDIUM, seconds),
                shows="batch queue: takes a free slot at once"),
        DemoJob(name="batch-low", spec=_spec("720p-h264", q.BATCH, p.LOW, seconds),
                shows="batch, low: waits behind the queues and priorities above it"),
        DemoJob(name="default-high", spec=_spec("720p-h264", q.DEFAULT, p.HIGH, seconds),
                shows="default, high: ahead of default/medium, behind live"),
        DemoJob(name="live-medium", spec=_spec("480p-h264", q.LIVE, p.MEDIUM, seconds),
                shows="live queue: served before default and batch"),
        DemoJob(name="live-high", spec=_spec("720p-h264", q.LIVE, p.HIGH, seconds),
                shows="live, high: first when a slot frees, though submitted late"),
        DemoJob(name="gpu", spec=_spec("1080p-h264-nvenc", q.DEFAULT, p.HIGH, seconds),
                shows="NVENC: rejected unless an agent has an NVIDIA GPU"),
        DemoJob(name="bad-input", spec=_spec("480p-h264", q.DEFAULT, p.MEDIUM, seconds,
                                             source=MISSING_INPUT),
                shows="missing input file: fails as user_error, not retried"),
        DemoJob(name="approval", spec=_spec("720p-h264", q.DEFAULT, p.MEDIUM, seconds,
                                            prompt="run this encode? (the demo approves)"),
                shows="waits for approval; the demo approves it"),
    ]  # fmt: skip


class DemoRow(msgspec.Struct, frozen=True, kw_only=True):
    """One demo job in the table and in ``--output json``."""

    id: str
    name: str
    shows: str
    status: str
    scenario: str
    queue: str
    priority: str
    agent: str
    attempt: int
    percent: float
    reason: str


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """What ``ffrtmp demo --output json`` prints."""

    jobs: list[DemoRow]
    finished: bool
    elapsed_s: float
    counts: dict[str, int]


def row(job: DemoJob, state: JobState, beat: Heartbeat | None) -> DemoRow:
    """A demo job as it stands, with live progress when its agent's heartbeat has it."""
    live = live_of(beat, state) if state.status in STARTED_STATUSES else None
    percent = 100.0 if state.status is S.COMPLETED else (live.percent if live else state.percent)
    return DemoRow(
        id=state.job,
        name=job.name,
        shows=job.shows,
        status=str(state.status),
        scenario=job.spec.scenario,
        queue=str(job.spec.queue),
        priority=str(job.spec.priority),
        agent=state.agent,
        attempt=state.attempt,
        percent=round(percent, 1),
        reason=failure(state),
    )


def table(rows: list[DemoRow]) -> Table:
    """The demo's jobs as a table."""
    out = Table("JOB", "DEMO", "SCENARIO", "QUEUE", "STATUS", "WHERE", "%", "WHY / WHAT IT SHOWS",
                box=None, pad_edge=False)  # fmt: skip
    for r in rows:
        where = f"{r.agent} #{r.attempt}" if r.agent else ""
        out.add_row(r.id, r.name, r.scenario, f"{r.queue}/{r.priority}", styled(r.status), where,
                    f"{r.percent:.0f}", r.reason or r.shows)  # fmt: skip
    return out


def summary_line(rows: list[DemoRow], elapsed_s: float) -> str:
    """``9 jobs in 31 s: 7 completed, 1 failed (user_error), 1 rejected (capability_mismatch)``."""
    counts = Counter(r.status for r in rows)
    parts = []
    for status, count in sorted(counts.items(), key=lambda kv: -kv[1]):
        mine = [r for r in rows if r.status == status and r.reason]
        reasons = sorted({r.reason.split(":", 1)[0] for r in mine})
        parts.append(f"{count} {status}" + (f" ({', '.join(reasons)})" if reasons else ""))
    return f"{len(rows)} jobs in {elapsed_s:.0f} s: " + ", ".join(parts)


def explained(rows: list[DemoRow]) -> DemoRow | None:
    """The job the hint explains: the first failed one, else the first rejected one."""
    return next((r for r in rows if r.status == S.FAILED), None) or next(
        (r for r in rows if r.status == S.REJECTED), None
    )


def explain_hint(rows: list[DemoRow], flags: str, *, logged: bool = False) -> list[str]:
    """How to ask the farm why a job failed and where it ran, for a job of this demo.

    ``jobs logs`` is suggested only when the job's attempt left a log (``logged``): a job
    rejected, or failed before FFmpeg ran, has none.
    """
    failed = explained(rows)
    if failed is None:
        return []
    job = failed.id
    lines = [
        f"Why did job {job} fail, and where did it run?",
        f"  ffrtmp jobs status {job}{flags}    state, node, attempt and the failure reason",
        f"  ffrtmp jobs history {job}{flags}   every event: who wrote it, where each attempt ran",
    ]
    if logged:
        lines.append(f"  ffrtmp jobs logs {job}{flags}      what FFmpeg printed")
    return lines


def _flags(where: Target) -> str:
    flags = "" if where.url == DEFAULT_NATS else f" --nats {where.url}"
    if where.subjects.prefix != DEFAULT_PREFIX:
        flags += f" --prefix {where.subjects.prefix}"
    return flags


async def _check_farm(conn: Conn) -> None:
    """A farm with a scheduler and at least one online agent, else one line saying so."""
    if not await scheduler_leads(conn):
        raise FfrtmpError(
            f"no scheduler leads on {conn.where.url}: start the farm with `ffrtmp up`"
        )
    if not any(a.status == "online" for a in (await fold_agents(conn)).values()):
        raise FfrtmpError(
            f"no agent is online on {conn.where.url}: `ffrtmp up` starts local agents"
        )


class Run:
    """One demo run: its jobs by id, and whether the approval was sent."""

    def __init__(self, jobs: list[DemoJob]) -> None:
        """Give every job a fresh id."""
        self.jobs = {command_id(): job for job in jobs}
        self.approved: set[str] = set()
        self.started = time.monotonic()

    async def submit(self, conn: Conn) -> None:
        """Send every job's SubmitJob."""
        for job_id, job in self.jobs.items():
            labels = {**job.spec.labels, "demo": job.name}
            spec = msgspec.structs.replace(job.spec, labels=labels)
            await conn.send(SubmitJob(id=command_id(), job=job_id, at=time.time(), by=operator(),
                                      spec=spec))  # fmt: skip

    async def rows(self, conn: Conn) -> list[DemoRow]:
        """Every job as it stands; a job waiting for approval is approved on the way."""
        rows = []
        for job_id, job in self.jobs.items():
            state, _ = await load_job(conn, job_id)
            if state.status is S.PENDING and job_id not in self.approved:
                await conn.send(RespondToJob(id=command_id(), job=job_id, at=time.time(),
                                             by=operator(), approve=True,
                                             answer="approved by ffrtmp demo"))  # fmt: skip
                self.approved.add(job_id)
            beat = await heartbeat(conn, state.agent) if state.status is S.RUNNING else None
            rows.append(row(job, state, beat))
        return rows

    def elapsed_s(self) -> float:
        """Seconds since the demo started."""
        return time.monotonic() - self.started


async def _watch(
    conn: Conn, demo: Run, timeout_s: float, show: Live | None, *, quiet: bool
) -> list[DemoRow]:
    seen: dict[str, str] = {}
    while True:
        rows = await demo.rows(conn)
        if show is not None:
            show.update(table(rows), refresh=True)
        elif not quiet:
            for r in rows:
                if seen.get(r.id) != r.status:
                    seen[r.id] = r.status
                    why = f" ({r.reason})" if r.reason else ""
                    typer.echo(f"job {r.id} {r.name}: {r.status}{why}")
        if all(ended(r) for r in rows) or demo.elapsed_s() > timeout_s:
            return rows
        await asyncio.sleep(REFRESH_S)  # the refresh period of the table


async def _logged(conn: Conn, rows: list[DemoRow]) -> bool:
    """Whether the job the hint explains has a log stored for its last attempt."""
    shown = explained(rows)
    if shown is None or not shown.attempt:
        return False
    try:
        await read_log(conn.js, conn.subjects, shown.id, shown.attempt)
    except FfrtmpError:  # LogNotFound, or no log bucket at all
        return False
    return True


async def _demo(where: Target, seconds: float, timeout_s: float) -> tuple[Summary, bool]:
    demo = Run(mix(seconds))
    async with connect(where) as conn:
        await _check_farm(conn)
        await demo.submit(conn)
        if not where.json:
            typer.echo(f"submitted {len(demo.jobs)} jobs; watching them until they end …")
        if where.json or not sys.stdout.isatty():
            rows = await _watch(conn, demo, timeout_s, None, quiet=where.json)
        else:
            with Live(console=console(), auto_refresh=False) as show:
                rows = await _watch(conn, demo, timeout_s, show, quiet=where.json)
        logged = await _logged(conn, rows)
    finished = all(ended(r) for r in rows)
    summary = Summary(jobs=rows, finished=finished, elapsed_s=round(demo.elapsed_s(), 1),
                      counts=dict(Counter(r.status for r in rows)))  # fmt: skip
    return summary, logged


def ended(shown: DemoRow) -> bool:
    """Whether the job has ended."""
    return shown.status in TERMINAL_STATUSES


def command(
    seconds: Annotated[
        float, typer.Option(min=0.1, help="Seconds of media each job encodes.")
    ] = 3.0,
    timeout_s: Annotated[
        float, typer.Option(help="Give up watching (exit 5) after this long.")
    ] = 300.0,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """Submit a mix of jobs to a running farm (`ffrtmp up`) and watch them end.

    Example: ffrtmp demo --nats nats://127.0.0.1:4222
    """
    where = target(nats, prefix, output)
    summary, logged = run(_demo(where, seconds, timeout_s))
    if where.json:
        echo_json(summary)
    else:
        out = console()
        out.print(table(summary.jobs))
        out.print()
        out.print(summary_line(summary.jobs, summary.elapsed_s))
        hint = explain_hint(summary.jobs, _flags(where), logged=logged)
        out.print("\n".join(hint), soft_wrap=True)
    if not summary.finished:
        typer.secho(f"error: not every job ended within {timeout_s:g} s; `ffrtmp top` shows why",
                    err=True)  # fmt: skip
        raise typer.Exit(EXIT_WAITING)
