"""``ffrtmp jobs submit --file``: many job specs, one JSON object a line, sent pipelined.

Every line is checked before anything is sent: a file with one bad line is refused whole, each
bad line named with its reason, so fixing the file and sending it again cannot submit a job
twice. A line may carry an ``"id"`` beside the spec's fields; a resent id is a no-op for the
scheduler, which makes a resent file idempotent. The commands go out through the client's door
(``client.submit``: each asked of the leading scheduler, stored on the commands stream where it
cannot answer, line by line) with a bounded number awaiting their answer at once (one round
trip each would cap a shell loop at a few hundred a second), then the scheduler's decisions are
read back from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final, NamedTuple

import msgspec
import typer
from rich.progress import Progress

from events.base import JobEventBase
from events.commands import SubmitJob
from events.errors import FfrtmpError, InvalidSpec
from events.ids import check_id
from events.job_events import CommandRefused
from events.limits import check_nesting
from events.spec import JobSpec, parse_spec
from ffrtmp.cli.common import EXIT_ERROR, Target, console, echo_json, explained, fail, operator, run
from ffrtmp.client.conn import Conn, command_id, connect

IN_FLIGHT: Final = 256  # submits awaiting their answer (or the stream's acknowledgement) at once


class Planned(NamedTuple):
    """A line that will be sent: where it stood, its job id and its spec."""

    line: int
    job: str
    spec: JobSpec


class LineRefused(msgspec.Struct, frozen=True):
    """A line that was not sent, and why."""

    line: int
    reason: str


class BulkSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What ``jobs submit --file`` prints: what was sent, what the scheduler decided."""

    submitted: int
    refused_lines: list[LineRefused] = []
    accepted: int = 0  # the scheduler recorded the job (queued, or pending approval)
    refused: list[LineRefused] = []  # the scheduler refused the command: line and reason
    undecided: int = 0  # no decision read back within the wait
    seconds: float = 0.0  # sending alone, first command to last acknowledgement
    jobs: list[str] = []


def plan(
    lines: Iterable[str], new_id: Callable[[], str]
) -> tuple[list[Planned], list[LineRefused]]:
    """Each non-blank line as a job to send, or the reason it cannot be; pure."""
    planned: list[Planned] = []
    refused: list[LineRefused] = []
    seen: dict[str, int] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            job, spec = _parse_line(text, new_id)
        except InvalidSpec as exc:
            refused.append(LineRefused(number, str(exc)))
            continue
        if job in seen:
            refused.append(LineRefused(number, f"job id {job!r} is already on line {seen[job]}"))
            continue
        seen[job] = number
        planned.append(Planned(number, job, spec))
    return planned, refused


def _parse_line(text: str, new_id: Callable[[], str]) -> tuple[str, JobSpec]:
    try:
        check_nesting(text, "line")
        raw = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise InvalidSpec("line", f"not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidSpec("line", "must be a JSON object (a job spec)")
    ident = raw.pop("id", None)
    if ident is not None and not isinstance(ident, str):
        raise InvalidSpec("id", "must be a string")
    job = check_id(ident) if ident is not None else new_id()
    return job, parse_spec(msgspec.json.encode(raw))


async def send_all(
    conn: Conn,
    commands: list[SubmitJob],
    on_sent: Callable[[int], None] = lambda _count: None,
) -> None:
    """Send every command, at most ``IN_FLIGHT`` awaiting their answer at once.

    A send that fails stops the rest; the error says how many were stored before it, since a
    line without an ``"id"`` sent again is a second job.
    """
    slots = asyncio.Semaphore(IN_FLIGHT)
    stored = 0

    async def one(command: SubmitJob) -> None:
        nonlocal stored
        try:
            await conn.send(command)
        finally:
            slots.release()
        stored += 1
        on_sent(1)

    try:
        async with asyncio.TaskGroup() as group:
            for command in commands:
                await slots.acquire()  # taken here, given back by the send: tasks are bounded
                group.create_task(one(command))
    except* FfrtmpError as failed:
        first = failed.exceptions[0]
        raise FfrtmpError(
            f"{first} ({stored} of {len(commands)} jobs were stored before it; lines with an"
            ' "id" are safe to send again, lines without one would make a second job)'
        ) from first


class _Tally:
    """Decisions read so far; kept when the wait runs out."""

    def __init__(self, lines: dict[str, int]) -> None:
        self.waiting = dict(lines)
        self.accepted = 0
        self.refused: list[LineRefused] = []


async def decisions(
    conn: Conn, from_seq: int, lines: dict[str, int], wait_s: float
) -> tuple[int, list[LineRefused]]:
    """Read the log after ``from_seq`` until each command has its decision or time is up.

    ``lines`` maps each command id to its line; returns how many the scheduler accepted and
    its refusals, by line.
    """
    tally = _Tally(lines)
    if wait_s > 0 and lines:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait_s):
                await _read_decisions(conn, from_seq, tally)
    return tally.accepted, sorted(tally.refused, key=lambda refusal: refusal.line)


async def _read_decisions(conn: Conn, from_seq: int, tally: _Tally) -> None:
    async for _seq, event in conn.store.follow(from_seq + 1):
        if not isinstance(event, JobEventBase) or event.cause not in tally.waiting:
            continue
        line = tally.waiting.pop(event.cause)
        if isinstance(event, CommandRefused):
            tally.refused.append(LineRefused(line, event.reason))
        else:
            tally.accepted += 1
        if not tally.waiting:
            return


async def submit_file(
    conn: Conn,
    planned: list[Planned],
    make: Callable[[Planned], SubmitJob],
    wait_s: float,
    on_sent: Callable[[int], None] = lambda _count: None,
) -> BulkSummary:
    """Send every planned job, then read back the scheduler's decisions."""
    commands = [make(item) for item in planned]
    start_seq = await conn.store.last_seq()
    started = time.monotonic()
    await send_all(conn, commands, on_sent)
    seconds = time.monotonic() - started
    lines = {command.id: item.line for command, item in zip(commands, planned, strict=True)}
    accepted, refused = await decisions(conn, start_seq, lines, wait_s)
    return BulkSummary(
        submitted=len(commands),
        accepted=accepted,
        refused=refused,
        undecided=len(commands) - accepted - len(refused),
        seconds=round(seconds, 3),
        jobs=[item.job for item in planned],
    )


def read_lines(source: Path) -> list[str]:
    """The file's lines, or standard input's for ``-``; unreadable is one line."""
    try:
        if str(source) == "-":
            return sys.stdin.read().splitlines()
        return source.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidSpec("--file", f"cannot read {source}: {exc}") from exc


def submit_command(where: Target, source: Path, wait_s: float) -> None:
    """``jobs submit --file``: check every line, send them all, print the summary."""
    with explained():
        planned, bad = plan(read_lines(source), command_id)
    if bad:
        for refusal in bad:
            typer.secho(f"error: line {refusal.line}: {refusal.reason}", err=True, fg="red")
        raise fail(f"{len(bad)} of the file's lines are invalid; nothing was submitted")
    by = operator()

    def make(item: Planned) -> SubmitJob:
        return SubmitJob(id=command_id(), job=item.job, at=time.time(), by=by, spec=item.spec)

    summary = run(_submit_with_progress(where, planned, make, wait_s))
    if where.json:
        echo_json(summary)
    else:
        _print_summary(summary)
    if summary.refused:
        raise typer.Exit(EXIT_ERROR)


async def _submit_with_progress(
    where: Target, planned: list[Planned], make: Callable[[Planned], SubmitJob], wait_s: float
) -> BulkSummary:
    show = sys.stdout.isatty() and not where.json
    with Progress(console=console(), transient=True, disable=not show) as bar:
        task = bar.add_task("submitting", total=len(planned))
        async with connect(where) as conn:
            return await submit_file(
                conn, planned, make, wait_s, lambda count: bar.advance(task, count)
            )


def _print_summary(summary: BulkSummary) -> None:
    rate = summary.submitted / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"submitted {summary.submitted:,} jobs in {summary.seconds:.1f} s ({rate:,.0f}/s); "
        f"the scheduler accepted {summary.accepted:,}, refused {len(summary.refused):,}, "
        f"not yet decided {summary.undecided:,}"
    )
    for refusal in summary.refused:
        typer.echo(f"  line {refusal.line}: refused: {refusal.reason}")
