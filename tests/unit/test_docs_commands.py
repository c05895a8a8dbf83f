"""Every command, snippet and document in README.md and docs/*.md is one the code still accepts.

Blocks are read by ``tests.docs_blocks`` while other work edits the docs, so nothing here names a
block: each ``ffrtmp …`` line of every shell block parses as the CLI parses it (the command, each
option, each value's type and choices), each documented command's ``--help`` exits 0, every
Python block compiles, every JSON block parses. ``tests/integration/test_docs_run.py`` runs what
can run here against a real farm. A block that cannot be checked is marked before its fence
with ``<!-- docs-test: skip: why -->``; the markers stay few and each says why.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from ffrtmp.cli import app
from tests.docs_blocks import Block, blocks, ffrtmp_argv, markers, quoted, shell_commands
from tests.unit.test_deploy_files import params, resolve

CHECKED = [block for block in blocks() if not block.skip]
SHELL = [block for block in CHECKED if block.lang in {"bash", "sh", "shell"}]


def documented() -> dict[str, tuple[Block, list[str]]]:
    """Each distinct ``ffrtmp`` command line of the docs: its line → (block, argv)."""
    found: dict[str, tuple[Block, list[str]]] = {}
    for block in SHELL:
        for argv in shell_commands(block):
            args = ffrtmp_argv(argv)
            if args is not None:
                found.setdefault(quoted(["ffrtmp", *args]), (block, args))
    return found


COMMANDS = documented()


def test_the_docs_document_commands() -> None:
    """The parser finds the docs' commands (a broken parser would pass everything below)."""
    assert len(COMMANDS) > 30
    paths = {" ".join(resolve(args)[2].split()[1:]) for _, args in COMMANDS.values()}
    assert {"up", "demo", "jobs submit", "jobs list", "sql", "agent run"} <= paths


@pytest.mark.parametrize("line", sorted(COMMANDS))
def test_every_documented_command_parses(line: str) -> None:
    """The command exists, and its options and values are ones it accepts."""
    block, args = COMMANDS[line]
    try:
        params(args)
    except Exception as exc:  # noqa: BLE001 -- click's usage errors (typer vendors click privately)
        pytest.fail(f"{block.where}: `{line}`: {exc}")


@pytest.mark.parametrize(
    "path", sorted({resolve(args)[2] for _, args in COMMANDS.values()}), ids=str
)
def test_every_documented_command_has_help(path: str) -> None:
    """``ffrtmp … --help`` of each documented command exits 0 and says what it does."""
    result = CliRunner().invoke(app, [*path.split()[1:], "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("block", [b for b in CHECKED if b.lang == "python"], ids=lambda b: b.where)
def test_every_python_block_compiles(block: Block) -> None:
    """Each Python snippet is a program ``python`` runs (no top-level ``await``)."""
    compile(block.body, block.where, "exec")


@pytest.mark.parametrize("block", [b for b in CHECKED if b.lang == "json"], ids=lambda b: b.where)
def test_every_json_block_parses(block: Block) -> None:
    """Each JSON example is JSON."""
    json.loads(block.body)


def test_skipped_blocks_are_few_and_say_why() -> None:
    """At most a handful of blocks are exempt, each with a reason of a few words."""
    skipped = markers()
    assert len(skipped) <= 5, [b.where for b in skipped]
    for block in skipped:
        assert len(block.skip.split()) >= 3, f"{block.where}: say why it cannot run here"
