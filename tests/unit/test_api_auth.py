"""Bearer tokens with a role (``ffrtmp.api.auth``): parsing, matching, and what each role may do."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.errors import FfrtmpError
from ffrtmp.api.auth import OPEN, Role, Tokens, is_loopback, parse_tokens

VIEW = "v" * 20
OPS = "o" * 20
TOKENS = Tokens(parse_tokens(f"viewer:watcher:{VIEW}\n# a comment\n\noperator:ci:{OPS}", "file"))


def test_entries_are_read_from_lines_or_commas() -> None:
    """A file has one entry a line; the environment separates them with commas."""
    assert parse_tokens(f"viewer:a:{VIEW},operator:b:{OPS}", "env") == [
        (Role.VIEWER, "a", VIEW),
        (Role.OPERATOR, "b", OPS),
    ]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (f"admin:root:{OPS}", "role 'admin'"),
        (f"viewer::{OPS}", "role:name:token"),
        ("viewer:a:", "role:name:token"),
        ("viewer:a:short", "shorter than 16"),
    ],
)
def test_a_bad_entry_is_one_line_naming_it(text: str, words: str) -> None:
    """Which entry is wrong and how, never the token itself."""
    with pytest.raises(FfrtmpError, match=words) as caught:
        parse_tokens(f"viewer:ok:{VIEW}\n{text}", "tokens.txt")
    assert "entry 2" in str(caught.value)
    assert OPS not in str(caught.value)


def test_the_header_names_the_caller_and_its_role() -> None:
    """Bearer and the token: the caller; the scheme is case-insensitive."""
    viewer = TOKENS.caller(f"Bearer {VIEW}")
    operator = TOKENS.caller(f"bearer {OPS}")
    assert viewer is not None
    assert operator is not None
    assert (viewer.name, viewer.role) == ("watcher", Role.VIEWER)
    assert (operator.name, operator.role) == ("ci", Role.OPERATOR)
    assert viewer.may(Role.VIEWER)
    assert not viewer.may(Role.OPERATOR)
    assert operator.may(Role.VIEWER)
    assert operator.may(Role.OPERATOR)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer ", OPS, f"Basic {OPS}", f"Bearer {OPS}x"]
)
def test_anything_else_is_no_caller(header: str | None) -> None:
    """No header, another scheme, a bare token or a near miss: no caller (401)."""
    assert TOKENS.caller(header) is None


@given(st.text(max_size=80))
def test_no_header_text_but_the_tokens_passes(header: str) -> None:
    """Whatever a client sends, only a configured token names a caller."""
    caller = TOKENS.caller(header)
    if caller is not None:
        assert header.split(" ", 1)[1].strip() in {VIEW, OPS}


def test_without_tokens_the_api_is_open() -> None:
    """A local farm without tokens: every request is the open operator."""
    assert not Tokens([])
    assert Tokens([]).caller(None) is OPEN
    assert OPEN.may(Role.OPERATOR)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("::", False), ("10.0.0.5", False), ("api.example", False)],  # noqa: S104
)  # fmt: skip
def test_only_loopback_may_run_open(host: str, *, loopback: bool) -> None:
    """Every interface, a LAN address or a name: not loopback, so tokens are needed."""
    assert is_loopback(host) is loopback
