"""The code blocks of README.md and docs/*.md, and the commands and statements in them.

A block is skipped by the docs tests only where an HTML comment right before its fence says so
and why: ``<!-- docs-test: skip: needs three hosts -->``. In a shell block, a word written
``cancel|pause|resume`` (no spaces) means "any of these" and is expanded into one command per
alternative; ``;``, ``&&`` and ``|`` separate commands; ``# …`` is a comment; a heredoc's body
(``python - <<'PY'``) is a block of its own in the language of its command.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Final

import msgspec

ROOT: Final = Path(__file__).resolve().parent.parent
DOCS: Final = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
_FENCE = re.compile(
    r"(?:<!--\s*docs-test:\s*skip:\s*(?P<why>.*?)\s*-->\s*\n)?^```(?P<lang>\w*)\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)
_ALTERNATIVES = re.compile(r"(?<![\S])([\w-]+(?:\|[\w-]+)+)(?![\S])")
_HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")
_SEPARATORS: Final = {";", "&&", "||", "|", "&"}
_REDIRECTS: Final = {">", ">>", "<", "2>", "2>&1"}
FFRTMP: Final = {"ffrtmp", ".venv/bin/ffrtmp"}


class Block(msgspec.Struct, frozen=True, kw_only=True):
    """One fenced block: where it is, its language, its text, and why it is skipped (if it is)."""

    path: str
    line: int
    lang: str
    body: str
    skip: str = ""

    @property
    def where(self) -> str:
        """``README.md:120``."""
        return f"{self.path}:{self.line}"


def blocks() -> list[Block]:
    """Every fenced block of the docs, heredoc bodies as blocks of their own."""
    found: list[Block] = []
    for path in DOCS:
        text = path.read_text()
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start("body"))
            block = Block(
                path=str(path.relative_to(ROOT)),
                line=line,
                lang=match.group("lang"),
                body=match.group("body"),
                skip=match.group("why") or "",
            )
            found += [block, *_heredocs(block)]
    return found


def _heredocs(block: Block) -> list[Block]:
    if block.lang not in {"bash", "sh", "shell"}:
        return []
    found, lines = [], block.body.splitlines()
    for i, line in enumerate(lines):
        opened = _HEREDOC.search(line)
        if opened is None:
            continue
        end = lines.index(opened.group(1), i + 1)
        lang = "python" if line.split()[0].startswith("python") else "text"
        body = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(msgspec.structs.replace(block, line=block.line + i + 1, lang=lang, body=body))
    return found


def shell_commands(block: Block) -> list[list[str]]:
    """The simple commands of a shell block, as argv lists (heredoc bodies left out)."""
    commands: list[list[str]] = []
    lines = iter(block.body.splitlines())
    for text in lines:
        line, heredoc = text, _HEREDOC.search(text)
        if heredoc is not None:
            for rest in lines:
                if rest == heredoc.group(1):
                    break
            line = text[: heredoc.start()]
        for expanded in _expand(line):
            commands += _split(expanded)
    return [argv for argv in commands if argv]


def _expand(line: str) -> list[str]:
    """``a|b|c`` words into one line per alternative."""
    found = _ALTERNATIVES.search(line)
    if found is None:
        return [line]
    return [
        expanded
        for choice in found.group(1).split("|")
        for expanded in _expand(line[: found.start()] + choice + line[found.end() :])
    ]


def _split(line: str) -> list[list[str]]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|<>")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    tokens = iter(lexer)
    for token in tokens:
        if token in _SEPARATORS:
            commands.append([])
        elif token in _REDIRECTS:
            next(tokens, None)
        elif not (not commands[-1] and "=" in token and token.split("=")[0].isidentifier()):
            commands[-1].append(token)
    return commands


def ffrtmp_argv(argv: list[str]) -> list[str] | None:
    """The arguments after ``ffrtmp`` when ``argv`` runs ffrtmp, else None."""
    return argv[1:] if argv and argv[0] in FFRTMP else None


def sql_statements(body: str) -> list[str]:
    """The statements of a SQL block (``--`` comment lines dropped)."""
    kept = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in kept.split(";") if statement.strip()]


def markers() -> list[Block]:
    """Blocks the docs mark as skipped: the list the tests keep small."""
    return [block for block in blocks() if block.skip]


def quoted(argv: list[str]) -> str:
    """An argv as one shell line."""
    return shlex.join(argv)
