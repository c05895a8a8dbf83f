"""``ffrtmp events``: the log itself, as a readable timeline or JSON lines.

``tail`` shows the last events (and with ``--follow`` the ones that land after); ``replay``
reads from a sequence or a time. Filters narrow by job (its subjects only), agent (events about
it or written by it), type and time. ``--output json`` prints one object per line:
``{"seq", "subject", "writer", "type", "event"}``, where ``event`` is the stored body.
``dead-letters`` lists what consumers set aside (the dead-letter stream, not the log): when,
from where, why, and the first bytes of each.
"""

from __future__ import annotations

import collections
import time
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
import typer
from rich.markup import escape

from events.base import SetAside, Unknown
from events.codec import Decoded
from events.deadletter import DeadLetter
from ffrtmp.cli.common import (
    NatsOpt,
    OutputOpt,
    PrefixOpt,
    Target,
    console,
    explained,
    run,
    target,
    when,
)
from ffrtmp.client.conn import Conn, connect
from ffrtmp.client.deadletters import latest
from ffrtmp.client.read import Entry, entries, last_on, resolve_agent, resolve_job
from ffrtmp.client.render import detail, event_type
from ffrtmp.client.times import parse_time

app = typer.Typer(help="The event log: tail it, follow it, replay it; the dead letters.")
app.info.no_args_is_help = True

JobOpt = Annotated[str | None, typer.Option("--job", help="Only this job (id prefix).")]
AgentOpt = Annotated[
    str | None, typer.Option("--agent", help="Only events about or written by this agent.")
]
TypeOpt = Annotated[
    list[str] | None,
    typer.Option("--type", "-t", help="Only these types, e.g. JobFailed (repeat)."),
]
SinceOpt = Annotated[str | None, typer.Option(help="Only since: 10m, 2h, 1d or an ISO time.")]


class Filter(msgspec.Struct, frozen=True, kw_only=True):
    """Which events to show."""

    subject: str
    agent: str | None = None
    types: frozenset[str] = frozenset()
    since: float | None = None

    def keep(self, entry: Entry) -> bool:
        """Whether the entry passes every filter."""
        event = entry.event
        if self.types and event_type(event).lower() not in self.types:
            return False
        at = getattr(event, "at", None)
        if self.since is not None and (at is None or at < self.since):
            return False
        if self.agent is None:
            return True
        return entry.writer == self.agent or getattr(event, "agent", None) == self.agent


async def _filter(
    conn: Conn, job: str | None, agent: str | None, types: list[str] | None, since: str | None
) -> Filter:
    subject = conn.subjects.all_events
    if job is not None:
        subject = conn.subjects.job_events(await resolve_job(conn, job))
    with explained():
        since_ts = None if since is None else parse_time(since, time.time())
    return Filter(
        subject=subject,
        agent=None if agent is None else await resolve_agent(conn, agent),
        types=frozenset(t.lower() for t in types or ()),
        since=since_ts,
    )


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One event of ``events --output json``."""

    seq: int
    subject: str
    writer: str
    type: str
    event: msgspec.Raw


def _raw(event: Decoded) -> bytes:
    """JSON for the event: an unreadable one as stored, one set aside as a JSON string of it."""
    if isinstance(event, Unknown):
        return event.raw
    if isinstance(event, SetAside):
        return msgspec.json.encode(event.raw.decode(errors="replace"))
    return msgspec.json.encode(event)


def _print(entry: Entry, where: Target) -> None:
    event = entry.event
    if where.json:
        body = _raw(event)
        line = Line(
            seq=entry.seq,
            subject=entry.subject,
            writer=entry.writer,
            type=event_type(event),
            event=msgspec.Raw(body),
        )
        typer.echo(msgspec.json.encode(line).decode())
        return
    at = getattr(event, "at", 0.0)
    about = getattr(event, "job", "") or getattr(event, "agent", "")
    console().print(
        f"{when(at)}  [dim]#{entry.seq}[/]  {entry.writer:<10} [bold]{event_type(event)}[/] "
        f"{about}  {detail(event)}",
        soft_wrap=True,
    )


async def _stream(
    conn: Conn, chosen: Filter, from_seq: int, *, follow: bool
) -> AsyncIterator[Entry]:
    async for entry in entries(conn, chosen.subject, from_seq=from_seq, follow=follow):
        if entry is not None and chosen.keep(entry):
            yield entry


@app.command()
def tail(
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many recent events.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new ones.")] = False,
    job: JobOpt = None,
    agent: AgentOpt = None,
    type_: TypeOpt = None,
    since: SinceOpt = None,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """The last events of the log; --follow keeps printing them as they land.

    Example: ffrtmp events tail -n 50 --type JobFailed --follow
    """
    where = target(nats, prefix, output)

    async def go() -> None:
        async with connect(where) as conn:
            chosen = await _filter(conn, job, agent, type_, since)
            end = await last_on(conn, chosen.subject)
            unfiltered = chosen.subject == conn.subjects.all_events and chosen == Filter(
                subject=chosen.subject
            )
            start = max(1, end - lines + 1) if unfiltered else 1
            recent: collections.deque[Entry] = collections.deque(maxlen=max(lines, 0))
            if end:
                async for entry in _stream(conn, chosen, start, follow=False):
                    recent.append(entry)
            for entry in recent:
                _print(entry, where)
            if follow:
                async for entry in _stream(conn, chosen, end + 1, follow=True):
                    _print(entry, where)

    run(go())


@app.command()
def replay(
    from_seq: Annotated[int, typer.Option("--from-seq", help="First stream sequence.")] = 1,
    job: JobOpt = None,
    agent: AgentOpt = None,
    type_: TypeOpt = None,
    since: SinceOpt = None,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """Replay the log from a sequence (or time) to now, as a timeline or JSON lines.

    Example: ffrtmp events replay --job 01k2 --output json
    """
    where = target(nats, prefix, output)

    async def go() -> int:
        shown = 0
        async with connect(where) as conn:
            chosen = await _filter(conn, job, agent, type_, since)
            async for entry in _stream(conn, chosen, from_seq, follow=False):
                _print(entry, where)
                shown += 1
        return shown

    shown = run(go())
    if not where.json:
        console().print(f"{shown} events", style="dim")


def _print_letter(letter: DeadLetter, where: Target) -> None:
    if where.json:
        typer.echo(msgspec.json.encode(letter).decode())
        return
    source, kind, origin, error, head = (
        escape(text)
        for text in (letter.source, letter.kind, letter.origin, letter.error, letter.head)
    )  # anyone may have written them: brackets are text, not markup
    console().print(
        f"{when(letter.at)}  [dim]#{letter.seq}[/]  {source:<6} [bold]{kind}[/]  {origin}  "
        f"{error}  [dim]{letter.size} B:[/] {head}",
        soft_wrap=True,
    )


@app.command("dead-letters")
def dead_letters(
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many recent letters.")] = 20,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """The latest messages consumers set aside: when, source, kind, error, first bytes.

    Example: ffrtmp events dead-letters -n 50 --output json
    """
    where = target(nats, prefix, output)

    async def go() -> list[DeadLetter]:
        async with connect(where) as conn:
            return await latest(conn, lines)

    found = run(go())
    for letter in found:
        _print_letter(letter, where)
    if not where.json:
        console().print(f"{len(found)} dead letters", style="dim")
