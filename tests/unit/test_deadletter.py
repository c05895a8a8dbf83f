"""Dead-letter headers and reading: one-line reasons, cut payloads, a total reader of anything."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.deadletter import (
    AGENT_SOURCE,
    CMD_SOURCE,
    ERROR_HEADER,
    HEAD_BYTES,
    HEADER_ROOM,
    KIND_HEADER,
    REASON_CHARS,
    SIZE_HEADER,
    SUBJECT_HEADER,
    UNKNOWN,
    Aside,
    Stored,
    fit,
    headers,
    parse_headers,
    read_letter,
    source_of,
)
from events.subjects import Subjects

SUBJECTS = Subjects("p")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_headers_carry_kind_subject_and_a_one_line_reason() -> None:
    """The reason is cut to one short line whatever it holds."""
    made = headers(Aside.CONFLICTING, "line one\r\nline two\t" + "x" * 500, "p.cmd.cancel")
    assert made[KIND_HEADER] == "conflicting"
    assert made[SUBJECT_HEADER] == "p.cmd.cancel"
    assert made[ERROR_HEADER].startswith("line one line two x")
    assert "\n" not in made[ERROR_HEADER]
    assert len(made[ERROR_HEADER]) <= REASON_CHARS


def test_a_payload_that_fits_is_copied_whole() -> None:
    """Under the limit less the headers' room, the payload and headers go as they are."""
    fields = headers(Aside.MALFORMED, "bad", "p.cmd.submit")
    assert fit(b"x" * 10, fields, 2048) == (b"x" * 10, fields)


def test_a_payload_at_the_limit_is_cut_and_its_size_kept() -> None:
    """A copy that would not fit with its headers is cut, and the original size is a header."""
    data, fields = fit(b"y" * 1000, {KIND_HEADER: "malformed"}, 1500)
    assert data == b"y" * (1500 - HEADER_ROOM)
    assert fields == {KIND_HEADER: "malformed", SIZE_HEADER: "1000"}


@pytest.mark.parametrize(
    ("subject", "source"),
    [
        ("p.dlq.cmd", CMD_SOURCE),
        ("p.dlq.agent-gpu-1", AGENT_SOURCE),
        ("p.dlq.projector", "projector"),
        ("q.dlq.cmd", UNKNOWN),
        ("", UNKNOWN),
    ],
)
def test_the_source_is_read_from_the_subject(subject: str, source: str) -> None:
    """Every agent is one source; another prefix is unknown."""
    assert source_of(SUBJECTS, subject) == source


def test_a_letter_reads_its_headers_and_shows_the_start_of_its_payload() -> None:
    """Kind, error and origin from the headers; a cut letter's size is its original size."""
    block = (
        b"NATS/1.0\r\nFfrtmp-Kind: malformed\r\nFfrtmp-Error: no\r\n"
        b"Ffrtmp-Subject: p.work.a1\r\nFfrtmp-Size: 5000\r\n\r\n"
    )
    stored = Stored(subject="p.dlq.agent-a1", seq=7, hdrs=_b64(block), data=_b64(b"\x1b[2Jab"))
    letter = read_letter(SUBJECTS, stored, 12.5)
    assert (letter.seq, letter.at, letter.source, letter.kind) == (7, 12.5, "agent", "malformed")
    assert (letter.error, letter.origin, letter.size) == ("no", "p.work.a1", 5000)
    assert letter.head == "\\x1b[2Jab"  # an escape sequence cannot reach a terminal


def test_a_letter_without_headers_says_what_it_does_not_know() -> None:
    """No headers, no payload: the kind is unknown, nothing else breaks."""
    letter = read_letter(SUBJECTS, Stored(subject="p.dlq.cmd", seq=1), 0.0)
    assert (letter.kind, letter.error, letter.size, letter.head) == (UNKNOWN, "", 0, "")


@given(st.binary(max_size=300), st.text(max_size=50), st.text(max_size=50))
def test_reading_anything_never_raises(raw: bytes, hdrs: str, data: str) -> None:
    """Any header bytes and any (even non-base64) fields give a letter with printable text."""
    assert isinstance(parse_headers(raw), dict)
    for block in (_b64(b"NATS/1.0\r\n" + raw), hdrs):
        letter = read_letter(SUBJECTS, Stored(subject=hdrs, hdrs=block, data=data), 0.0)
        for text in (letter.kind, letter.error, letter.origin, letter.head):
            assert text.isprintable()
        assert len(letter.head) <= 4 * HEAD_BYTES
