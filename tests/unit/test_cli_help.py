r"""Every command's --help says what its options' help strings say, brackets included.

typer renders help through rich, whose markup takes ``[default: …]`` for a style tag and drops
it ("NATS URL ."). A help string escapes it (``\[default: …]``); this walks every command and
checks each bracketed part of each option's help reaches the rendered help.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from ffrtmp.cli import app

BRACKETED = re.compile(r"\\?(\[[^\]]*\])")


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every leaf command under ``command``, with its path."""
    children = getattr(command, "commands", None)
    if children is None:
        yield path, command
        return
    for name in sorted(children):
        yield from walk(children[name], (*path, name))


COMMANDS = dict(walk(typer.main.get_command(app)))


def test_the_walk_finds_the_commands() -> None:
    """Nested groups are walked (a broken walk would check nothing)."""
    assert ("jobs", "submit") in COMMANDS
    assert len(COMMANDS) > 30


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_bracketed_help_is_shown_not_eaten_as_markup(path: tuple[str, ...]) -> None:
    """``[default: …]`` in an option's help appears in ``--help`` as written."""
    wanted = [
        part
        for param in COMMANDS[path].params
        for part in BRACKETED.findall(getattr(param, "help", None) or "")
    ]
    if not wanted:
        return
    shown = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "400"})
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    for part in wanted:
        assert part in text, f"ffrtmp {' '.join(path)}: {part} is not shown"


def choices(param: Any) -> set[str]:
    """The values an enum-typed option accepts (none for a path or a string)."""
    return {str(choice) for choice in getattr(param.type, "choices", ())}


def test_output_means_a_format_everywhere() -> None:
    """Every ``--output`` picks a format (table and json at least); a file is ``--file``."""
    found = {}
    for path, command in COMMANDS.items():
        for param in command.params:
            if "--output" in param.opts:
                found[" ".join(path)] = choices(param)
    assert len(found) > 15
    wrong = {path: choices for path, choices in found.items() if not {"table", "json"} <= choices}
    assert not wrong, wrong


def test_no_command_has_a_json_flag_of_its_own() -> None:
    """JSON is ``--output json`` everywhere, never a separate ``--json`` flag."""
    flags = {
        " ".join(path): param.opts
        for path, command in COMMANDS.items()
        for param in command.params
        if "--json" in param.opts
    }
    assert not flags, flags


def test_a_port_flag_says_which_port() -> None:
    """NATS is ``--nats-port``, /metrics ``--metrics-port``; a bare ``--port`` is an alias only."""
    primary = {
        (" ".join(path), param.opts[0])
        for path, command in COMMANDS.items()
        for param in command.params
        if param.opts and param.opts[0].endswith("port")
    }
    assert not {flag for flag in primary if flag[1] == "--port"}, primary
    assert {("server", "--nats-port"), ("up", "--nats-port")} <= primary
    assert {("exporter run", "--metrics-port"), ("up", "--metrics-port")} <= primary
