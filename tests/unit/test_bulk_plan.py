"""Reading a file of job specs: every line checked before anything is sent."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from ffrtmp.cli.bulk import plan

GOOD = '{"scenario": "720p-h264", "duration_s": 2}'


def ids() -> itertools.count[int]:
    """A fresh counter for made-up job ids."""
    return itertools.count(1)


def _ids_from(counter: itertools.count[int]) -> str:
    return f"gen-{next(counter)}"


def test_good_lines_are_planned_with_their_ids_or_fresh_ones() -> None:
    """A line's "id" names its job; a line without one gets a fresh id; blank lines are skipped."""
    counter = ids()
    lines = [GOOD, "", '{"id": "mine-1", "scenario": "480p-h264"}', "   "]
    planned, refused = plan(lines, lambda: _ids_from(counter))
    assert refused == []
    assert [(p.line, p.job, p.spec.scenario) for p in planned] == [
        (1, "gen-1", "720p-h264"),
        (3, "mine-1", "480p-h264"),
    ]


def test_each_bad_line_is_named_with_its_reason() -> None:
    """Junk, a non-object, an unknown field, a bad id and a repeated id are each refused by line."""
    counter = ids()
    lines = [
        "not json",
        "[1, 2]",
        '{"scenario": "720p-h264", "colour": "red"}',
        '{"id": "Bad.Id", "scenario": "720p-h264"}',
        '{"id": 7}',
        '{"id": "twice", "scenario": "720p-h264"}',
        '{"id": "twice", "scenario": "720p-h264"}',
        '{"scenario": "no-such-scenario"}',
    ]
    planned, refused = plan(lines, lambda: _ids_from(counter))
    assert [p.job for p in planned] == ["twice"]
    by_line = {r.line: r.reason for r in refused}
    assert sorted(by_line) == [1, 2, 3, 4, 5, 7, 8]
    assert "not valid JSON" in by_line[1]
    assert "JSON object" in by_line[2]
    assert "colour" in by_line[3]
    assert "Bad.Id" in by_line[4]
    assert "string" in by_line[5]
    assert "line 6" in by_line[7]
    assert "no-such-scenario" in by_line[8]


@given(st.lists(st.one_of(st.just(GOOD), st.text(max_size=40), st.just("")), max_size=30))
def test_every_non_blank_line_is_planned_or_refused_once(lines: list[str]) -> None:
    """Whatever the file holds, each non-blank line ends up in exactly one of the two lists."""
    counter = ids()
    planned, refused = plan(lines, lambda: _ids_from(counter))
    taken = sorted([p.line for p in planned] + [r.line for r in refused])
    assert taken == [n for n, text in enumerate(lines, start=1) if text.strip()]
    assert len({p.job for p in planned}) == len(planned)
    assert all(r.reason for r in refused)


def test_a_spec_written_by_json_dumps_round_trips() -> None:
    """A line written by a script's json.dumps reads back as the same spec."""
    line = json.dumps(
        {"id": "s-1", "scenario": "1080p-h264", "queue": "batch", "labels": {"a": "b"}}
    )
    (planned,), _ = plan([line], lambda: "unused")
    assert (planned.job, planned.spec.queue, dict(planned.spec.labels)) == (
        "s-1",
        "batch",
        {"a": "b"},
    )
