"""What every operator command shares: where the farm is, how to print, how to fail.

Settings come, highest first, from the command line (``--nats``, ``--prefix``, ``--output``
and the connection flags of ``connflags``), the environment, a TOML config file, and the
defaults: ``ffrtmp.config`` resolves them, the same way for every command.

Exit codes (documented in the README): 0 done; 1 an error ffrtmp explains in one line (bad
input, unknown id, NATS unreachable, a command the job refused); 2 a usage error; 3 the job
failed; 4 the job was canceled or rejected; 5 still waiting when ``--timeout-s`` ran out;
70 a bug (traceback under ``--debug``); 130 interrupted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Final, TypeVar

import msgspec
import typer
from rich.console import Console

from events.connection import DEFAULT_URL, NatsOptions, redact_logs
from events.errors import FfrtmpError
from events.subjects import Subjects
from ffrtmp.cli import connflags
from ffrtmp.client.follow import Timeout
from ffrtmp.config import Output as Output  # noqa: PLC0414 -- re-exported for the commands
from ffrtmp.config import nats_options, resolve

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
EXIT_FAILED: Final = 3
EXIT_CANCELED: Final = 4  # canceled or rejected: it will not run unless retried
EXIT_WAITING: Final = Timeout.exit_code  # a wait that ran out
EXIT_INTERRUPTED: Final = 130
DEFAULT_NATS: Final = DEFAULT_URL


class Target(msgspec.Struct, frozen=True):
    """Where one command acts and how it prints; ``url`` is for messages (password hidden)."""

    url: str
    subjects: Subjects
    output: Output
    nats: NatsOptions | None = None
    """How to connect (credentials, TLS); None: ``url`` as it is."""

    @property
    def json(self) -> bool:
        """Whether to print JSON."""
        return self.output is Output.JSON


NatsOpt = Annotated[
    str | None,
    typer.Option(
        "--nats", envvar="FFRTMP_NATS_URL", help="NATS URL [default: config file, else local]."
    ),
]
PrefixOpt = Annotated[
    str | None,
    typer.Option("--prefix", envvar="FFRTMP_PREFIX", help="Subject and stream prefix."),
]
OutputOpt = Annotated[
    Output | None,
    typer.Option("--output", "-o", envvar="FFRTMP_OUTPUT", help="table, or json for scripts."),
]


def target(nats: str | None, prefix: str | None, output: Output | None) -> Target:
    """The settings after flags, environment and config file have had their say."""
    config = resolve({"nats": nats, "prefix": prefix, "output": output, **connflags.given()})
    options = nats_options(config)
    return Target(
        url=options.shown, subjects=Subjects(config.prefix), output=config.output, nats=options
    )


def console() -> Console:
    """A rich console on stdout; ``NO_COLOR`` turns colour off, a pipe gets whole lines."""
    wide = None if sys.stdout.isatty() else 200
    return Console(highlight=False, width=wide, no_color=bool(os.environ.get("NO_COLOR")))


def echo_json(value: object) -> None:
    """One JSON document on stdout."""
    typer.echo(msgspec.json.encode(value).decode())


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print one line on stderr; the caller raises what this returns."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


T = TypeVar("T")


@contextlib.contextmanager
def explained() -> Iterator[None]:
    """Our errors as one line on stderr and exit 1; Ctrl-C as exit 130, quietly."""
    try:
        yield
    except FfrtmpError as exc:
        raise fail(str(exc), getattr(exc, "exit_code", EXIT_ERROR)) from None
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_INTERRUPTED) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine with its errors explained (see ``explained``)."""
    logging.basicConfig(level=logging.CRITICAL)  # nats-py's reconnect chatter is not the answer
    redact_logs()
    with explained():
        return asyncio.run(coro)
    raise AssertionError  # pragma: no cover -- explained() re-raises every error


def operator() -> str:
    """Who is asking, recorded in the events as ``by``."""
    return os.environ.get("FFRTMP_USER") or os.environ.get("USER") or "operator"


# --- time ------------------------------------------------------------------------------------


def when(ts: float) -> str:
    """A time for a table: ISO 8601 in UTC to the second, empty for 'never'."""
    if not ts:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def ago(ts: float, now: float) -> str:
    """How long ago, briefly: ``5s``, ``3m``, ``2h``, ``4d``."""
    if not ts:
        return ""
    delta = max(0.0, now - ts)
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if delta >= size:
            return f"{int(delta // size)}{unit}"
    return f"{int(delta)}s"
