"""The top-level command group that imports a command's module only when that command runs.

``ffrtmp --help`` used to import every command's module, and with them DuckDB, pyarrow, nats-py,
nats.micro and the benches: over half a second before any output. Here each top-level command is
a name, a one-line help and the module that holds it; ``--help`` renders from those lines, and a
command's module is imported when the command is resolved. A test keeps each line equal to the
real command's help, so the table cannot drift.

Help is plain (``MARKUP``): typer's rich renderer imports ``rich.markdown`` and ``markdown_it``
whatever the markup mode, 85 ms of every ``--help`` (150 ms against 67 ms for ``ffrtmp --help``).
typer hands the root's mode down to every group and command under it, so the top level and
``load``'s holder set it for the whole CLI. Tables and progress bars still use rich.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final, NamedTuple

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

if TYPE_CHECKING:  # typer vendors click; only its type names are used here
    from typer._click import Command, Context, HelpFormatter


class LazyCommand(NamedTuple):
    """A top-level command: its name, where it lives, and its one-line help."""

    name: str
    module: str
    attribute: str  # a ``typer.Typer`` (a group) or a function (a command)
    help: str


MARKUP: Final = None
"""typer's ``rich_markup_mode`` for the whole CLI: click formats help and usage errors."""
HELP_WIDTH: Final = 100
"""Widest help click wraps to, where the terminal is wider: command lines stay whole."""

_CLI: Final = "ffrtmp.cli."
COMMANDS: Final = (
    LazyCommand(
        "server",
        _CLI + "server",
        "command",
        "Run nats-server with ffrtmp's nats.conf and streams until Ctrl-C.",
    ),
    LazyCommand(
        "scenarios",
        _CLI + "scenarios",
        "command",
        "List scenarios: resolution, frame rate, codec, encoder, bitrate, GPU.",
    ),
    LazyCommand(
        "check",
        _CLI + "check",
        "command",
        "Check the log's invariants: no job lost, run twice, stuck, or moved illegally.",
    ),
    LazyCommand("sql", _CLI + "sql", "command", "Ask the projections a question in SQL."),
    LazyCommand(
        "up",
        _CLI + "up",
        "command",
        "Run a whole farm here: NATS, scheduler, projector, exporter and local agents.",
    ),
    LazyCommand(
        "top",
        _CLI + "top",
        "command",
        "Watch the farm live: queues, agents with load and GPU temperature, jobs, failures.",
    ),
    LazyCommand(
        "demo",
        _CLI + "demo",
        "command",
        "Submit a mix of jobs to a running farm (`ffrtmp up`) and watch them end.",
    ),
    LazyCommand(
        "bench", _CLI + "bench", "app", "Measure ffrtmp against raw baselines; prints JSON."
    ),
    LazyCommand("auth", _CLI + "auth", "app", "NATS users and permissions per role."),
    LazyCommand(
        "streams", _CLI + "streams", "app", "The farm's streams and buckets: the setup step."
    ),
    LazyCommand(
        "scheduler",
        _CLI + "scheduler",
        "app",
        "The scheduler: commands in; assignments, rejections, retries out.",
    ),
    LazyCommand(
        "agent",
        _CLI + "agent",
        "app",
        "The agent: pulls FFmpeg work for this machine and reports it.",
    ),
    LazyCommand(
        "api",
        _CLI + "api",
        "app",
        "The HTTP API and web console: the farm for programs and for people.",
    ),
    LazyCommand(
        "exporter",
        _CLI + "exporter",
        "app",
        "The Prometheus exporter: the log's counters and the workers' telemetry.",
    ),
    LazyCommand(
        "projector",
        _CLI + "projector",
        "app",
        "The projector: the log folded into DuckDB, SQL answered over NATS.",
    ),
    LazyCommand(
        "projections",
        _CLI + "projector",
        "rebuild_app",
        "The DuckDB projections: rebuild one from the log.",
    ),
    LazyCommand("jobs", _CLI + "jobs", "app", "Submit, list, watch, steer and explain jobs."),
    LazyCommand(
        "nodes",
        _CLI + "nodes",
        "app",
        "The agents: list, describe, drain, quarantine, clear, remove.",
    ),
    LazyCommand(
        "events",
        _CLI + "events_cmd",
        "app",
        "The event log: tail it, follow it, replay it; the dead letters.",
    ),
)


def _no_options() -> None:
    """Makes the holder below a group, so its one command keeps its own name and help."""


def load(command: LazyCommand) -> Command:
    """Import the command's module and build its click command as the top level would."""
    target = getattr(importlib.import_module(command.module), command.attribute)
    holder = typer.Typer(add_completion=False, rich_markup_mode=MARKUP)
    holder.callback()(_no_options)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=command.name)
    else:
        holder.command(name=command.name)(target)
    group = typer.main.get_command(holder)
    if not isinstance(group, TyperGroup):  # a holder with a callback is always a group
        raise TypeError(f"typer built {type(group).__name__} for a group")
    return group.commands[command.name]


class _Stub(TyperCommand):
    """A lazy command's place: its name and help line, and where the real one lives."""

    def __init__(self, command: LazyCommand) -> None:
        super().__init__(name=command.name, help=command.help)
        self.lazy = command


class _Commands(dict[str, "Command"]):
    """A group's commands where reading a stub's entry imports and puts the real command."""

    def __getitem__(self, name: str) -> Command:
        command = super().__getitem__(name)
        if isinstance(command, _Stub):
            command = self[name] = load(command.lazy)
        return command

    def get(  # type: ignore[override]  # typer's groups call get(name) only
        self, name: str, default: Command | None = None
    ) -> Command | None:
        """The real command under ``name``, imported on first read."""
        return self[name] if name in self else default  # noqa: SIM401  # this is get itself

    def peek(self, name: str) -> Command | None:
        """What stands under ``name``, a stub included: nothing is imported."""
        return super().get(name)


class LazyGroup(TyperGroup):
    """A typer group whose lazy commands stand as help-only stubs until one is read."""

    def __init__(self, **attrs: object) -> None:
        """The group typer builds, with a stub in front of each eager command."""
        super().__init__(**attrs)  # type: ignore[arg-type]  # typer passes its own keywords
        commands = _Commands({command.name: _Stub(command) for command in COMMANDS})
        commands.update(self.commands)
        self.commands = self._commands = commands
        self._rendering_help = False

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        """The real command, imported on first use; its stub while the group's help renders."""
        if self._rendering_help:
            return self._commands.peek(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        """The group's help from the stubs' lines: no command module is imported for it."""
        self._rendering_help = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._rendering_help = False
