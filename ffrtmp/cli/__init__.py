"""The ``ffrtmp`` command line: one typer app, one module per command group.

Errors ffrtmp raises on purpose (``FfrtmpError``) print as one line on stderr with exit code 1;
anything else is a bug and keeps its traceback only under ``--debug``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from events.errors import FfrtmpError
from ffrtmp import __version__
from ffrtmp.cli import connflags
from ffrtmp.cli.lazy import HELP_WIDTH, MARKUP, LazyGroup

app = typer.Typer(
    name="ffrtmp",
    cls=LazyGroup,  # each command's module is imported when that command runs
    context_settings={"max_content_width": HELP_WIDTH},
    help="Schedule FFmpeg transcoding and streaming jobs across a farm, on NATS JetStream.\n\n"
    + connflags.HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=MARKUP,  # plain help: lazy.py says why
)

EXIT_ERROR = 1
EXIT_BUG = 70  # EX_SOFTWARE: an unexpected exception, i.e. a bug in ffrtmp


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(__version__)
        raise typer.Exit


@app.callback()
def _options(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print ffrtmp's version and exit.",
        ),
    ] = False,
    _debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the traceback of an unexpected error (may stand anywhere on the line).",
        ),
    ] = False,
) -> None:
    """Schedule FFmpeg transcoding and streaming jobs across a farm, on NATS JetStream."""


@app.command()
def version() -> None:
    """Print ffrtmp's version.

    Example: ffrtmp version
    """
    typer.echo(__version__)


def main() -> None:
    """Run the CLI; render our errors as one line, hide tracebacks unless ``--debug``."""
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        sys.argv[1:] = connflags.take(sys.argv[1:])
        app()  # usage errors, --help and Ctrl-C are handled by typer, which exits itself
    except FfrtmpError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if debug:
            raise
        typer.secho(f"internal error: {exc!r} (rerun with --debug for the traceback)", err=True)
        sys.exit(EXIT_BUG)
