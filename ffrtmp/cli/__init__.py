"""The ``ffrtmp`` command line: one typer app, one module per command group.

Errors ffrtmp raises on purpose (``FfrtmpError``) print as one line on stderr with exit code 1;
anything else is a bug and keeps its traceback only under ``--debug``.
"""

from __future__ import annotations

import sys

import typer

from events.errors import FfrtmpError
from ffrtmp import __version__
from ffrtmp.cli import (
    agent,
    auth,
    bench,
    check,
    demo,
    events_cmd,
    exporter,
    jobs,
    nodes,
    projector,
    scenarios,
    scheduler,
    server,
    sql,
    top,
    up,
)

app = typer.Typer(
    name="ffrtmp",
    help="Schedule FFmpeg transcoding and streaming jobs across a farm, on NATS JetStream.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command(name="server")(server.command)
app.command(name="scenarios")(scenarios.command)
app.command(name="check")(check.command)
app.command(name="sql")(sql.command)
app.command(name="up")(up.command)
app.command(name="top")(top.command)
app.command(name="demo")(demo.command)
app.add_typer(bench.app, name="bench")
app.add_typer(auth.app, name="auth")
app.add_typer(scheduler.app, name="scheduler")
app.add_typer(agent.app, name="agent")
app.add_typer(exporter.app, name="exporter")
app.add_typer(projector.app, name="projector")
app.add_typer(projector.rebuild_app, name="projections")
app.add_typer(jobs.app, name="jobs")
app.add_typer(nodes.app, name="nodes")
app.add_typer(events_cmd.app, name="events")

EXIT_ERROR = 1
EXIT_BUG = 70  # EX_SOFTWARE: an unexpected exception, i.e. a bug in ffrtmp


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
        app()  # usage errors, --help and Ctrl-C are handled by typer, which exits itself
    except FfrtmpError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(EXIT_ERROR)
    except Exception as exc:
        if debug:
            raise
        typer.secho(f"internal error: {exc!r} (rerun with --debug for the traceback)", err=True)
        sys.exit(EXIT_BUG)
