"""The top-level CLI imports a command's module only when that command runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer
import typer.main
from typer.core import TyperCommand, TyperGroup
from typer.testing import CliRunner

from ffrtmp import __version__
from ffrtmp.cli import app
from ffrtmp.cli.lazy import COMMANDS, LazyCommand, load

# What made `ffrtmp --help` take over half a second: none of it is needed to print the help.
# typer's rich help renderer (with rich.markdown and markdown_it) cost 85 ms of it: help is plain.
HEAVY = (
    *("duckdb", "pyarrow", "nats", "prometheus_client", "projections", "agent", "ffrtmp.bench"),
    *("typer.rich_utils", "rich.markdown", "markdown_it"),
)

_PROBE = """
import sys
from ffrtmp.cli import main
sys.argv = ["ffrtmp", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
heavy = {heavy!r}
loaded = (m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
print("MODULES:" + ",".join(sorted(loaded)))
"""


def _loaded_after(*argv: str) -> set[str]:
    probe = _PROBE.format(heavy=HEAVY)
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = done.stdout.rpartition("MODULES:")[2].strip()
    return {name for name in loaded.split(",") if name}


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_each_help_line_is_the_commands_own(command: LazyCommand) -> None:
    """The line `ffrtmp --help` shows for a command is the one its own module declares."""
    assert load(command).get_short_help_str(limit=500) == command.help


def test_every_command_of_the_cli_is_in_the_table() -> None:
    """The group lists exactly the table's commands and the eager `version`."""
    group = typer.main.get_command(app)
    names = group.list_commands(typer.Context(group))  # type: ignore[attr-defined]
    assert sorted(names) == sorted([*(command.name for command in COMMANDS), "version"])


def test_top_level_help_imports_no_command_module() -> None:
    """`ffrtmp --help` prints every command without importing DuckDB, NATS or the benches."""
    assert _loaded_after("--help") == set()


def test_a_command_imports_what_it_needs() -> None:
    """Resolving a command does import its module (the probe can see an import)."""
    assert "projections" in _loaded_after("projector", "run", "--help")


def test_version_option_prints_the_version_and_exits_zero() -> None:
    """`ffrtmp --version` prints the version with exit code 0, not a usage error."""
    done = subprocess.run(
        [sys.executable, "-c", "from ffrtmp.cli import main; main()", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, __version__)


def test_a_mistyped_command_is_suggested_from_the_table() -> None:
    """A typo of a lazy command still gets the usage error with a suggestion."""
    result = CliRunner().invoke(app, ["jobz"])
    assert result.exit_code == 2
    assert "jobs" in result.output


def test_submitting_needs_no_database() -> None:
    """`jobs submit` loads no DuckDB, pyarrow or projection code: only a listing needs them."""
    loaded = _loaded_after("jobs", "submit", "--help")
    assert not {m.split(".")[0] for m in loaded} & {"duckdb", "pyarrow", "projections"}


def _every_command(command: object) -> list[object]:
    if isinstance(command, TyperGroup):
        return [command, *(c for sub in command.commands.values() for c in _every_command(sub))]
    return [command]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_every_help_is_plain(command: LazyCommand) -> None:
    """Each command and subcommand under `ffrtmp` formats its help with click, not with rich."""
    commands = _every_command(load(command))
    assert all(isinstance(c, TyperCommand | TyperGroup) for c in commands)
    assert [c.name for c in commands if c.rich_markup_mode is not None] == []  # type: ignore[attr-defined]


def test_a_subcommands_help_loads_no_rich_renderer() -> None:
    """`ffrtmp jobs submit --help` prints without typer's rich help (nor DuckDB)."""
    loaded = _loaded_after("jobs", "submit", "--help")
    assert not loaded & {"typer.rich_utils", "rich.markdown", "markdown_it"}
