"""One validation of every id and string: the same answer at every door, never an exception."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.codec import accept_command, decode_work, encode
from events.commands import CancelJob, RemoveAgent, RespondToJob, SubmitJob, check_command
from events.errors import InvalidSpec, MalformedMessage
from events.ids import check_id
from events.job import decide, initial
from events.job_events import CommandRefused, JobSubmitted
from events.limits import MAX_NESTING, MAX_TEXT, check_nesting, nesting
from events.spec import JobSpec, parse_spec
from events.subjects import Subjects
from events.work import Dispatch

SUBJECTS = Subjects("ffrtmp")
SPEC = JobSpec(scenario="720p-h264")
BAD_IDS = ["x\n", "a.b", "A", "a" * 65, "a" * 5000, "", " x", "x y", "-x", "é", "a*", "a>"]


@pytest.mark.parametrize("ident", BAD_IDS)
def test_a_bad_job_id_is_refused_by_the_cli_rule(ident: str) -> None:
    """Ids are matched whole: a trailing newline, a dot, uppercase, 65 characters: refused."""
    with pytest.raises(InvalidSpec, match="job id"):
        check_id(ident)


@pytest.mark.parametrize("ident", BAD_IDS)
def test_a_raw_command_with_a_bad_job_id_is_malformed(ident: str) -> None:
    """The scheduler's door says what the CLI says, as a MalformedMessage naming the field."""
    data = encode(CancelJob(id="c1", job=ident, at=1.0))
    with pytest.raises(MalformedMessage, match="job id"):
        accept_command(data)


@given(st.text(max_size=80))
def test_any_job_id_is_accepted_only_if_it_can_name_its_subjects(ident: str) -> None:
    """Whatever a client sends as a job id, an accepted one makes valid subjects."""
    try:
        command = accept_command(encode(CancelJob(id="c1", job=ident, at=1.0)))
    except MalformedMessage:
        return
    assert isinstance(command, CancelJob)
    subject = SUBJECTS.job_event(command.job, "sched")
    assert subject.split(".")[3] == ident
    assert ident == ident.strip()
    assert len(ident) <= 64


@pytest.mark.parametrize(
    ("command", "field"),
    [
        (CancelJob(id="c1\n", job="j", at=1.0), "command id"),
        (CancelJob(id="c" * 129, job="j", at=1.0), "command id"),
        (CancelJob(id="c1", job="j", at=1.0, by="b" * 129), "by"),
        (CancelJob(id="c1", job="j", at=1.0, by="eve\x1b[31m"), "by"),
        (CancelJob(id="c1", job="j", at=1.0, reason="r" * (MAX_TEXT + 1)), "reason"),
        (RespondToJob(id="c1", job="j", at=1.0, approve=True, answer="a" * 900_000), "answer"),
        (RemoveAgent(id="c1", agent="A.B", at=1.0), "agent id"),
    ],
)
def test_every_string_of_a_command_has_a_limit(command: Any, field: str) -> None:
    """Command ids, who asked, reasons, answers, agent ids: each bounded, named when refused."""
    with pytest.raises(InvalidSpec) as refused:
        check_command(command)
    assert refused.value.field == field
    with pytest.raises(MalformedMessage, match=field):
        accept_command(encode(command))


def test_a_reason_may_span_lines_but_an_id_may_not() -> None:
    """Free text keeps its newlines; ids and ``by`` do not."""
    command = CancelJob(id="c1", job="j", at=1.0, reason="two\nlines")
    assert check_command(command) is command


def test_a_newer_command_version_is_set_aside_not_read_as_v1() -> None:
    """``v: 2`` is a message this code does not know how to read: malformed, not v1."""
    raw = msgspec.json.decode(encode(CancelJob(id="c1", job="j", at=1.0)))
    raw["v"] = 2
    with pytest.raises(MalformedMessage, match="CancelJob v2: this code reads v1"):
        accept_command(msgspec.json.encode(raw))
    dispatch = Dispatch(job="j", attempt=1, spec=SPEC, budget_s=1.0, after_seq=1, at=1.0)
    work = msgspec.json.decode(encode(dispatch))
    work["v"] = 2
    with pytest.raises(MalformedMessage, match="v2"):
        decode_work(msgspec.json.encode(work))


def test_an_unknown_spec_field_over_raw_nats_is_refused_as_by_the_cli() -> None:
    """A spec field this code does not know is an error on the wire exactly as in a spec file."""
    raw = msgspec.json.decode(encode(SubmitJob(id="s1", job="j", at=1.0, spec=SPEC)))
    raw["spec"]["gpu_count"] = 2
    with pytest.raises(MalformedMessage, match=r"spec\.gpu_count: unknown field"):
        accept_command(msgspec.json.encode(raw))
    with pytest.raises(InvalidSpec, match="gpu_count: unknown field"):
        parse_spec(msgspec.json.encode(raw["spec"]))


@pytest.mark.parametrize("depth", [1_000, 30_000])
def test_deep_nesting_is_refused_in_one_line_never_a_recursion_error(depth: int) -> None:
    """A spec nested deeper than the limit is InvalidSpec; a command nesting junk is malformed."""
    nested = "[" * depth + "]" * depth
    with pytest.raises(InvalidSpec, match=f"nested deeper than {MAX_NESTING}"):
        parse_spec('{"scenario": "720p-h264", "labels": ' + nested + "}")
    command = b'{"type":"CancelJob","id":"c","job":"j","at":1,"x":' + nested.encode() + b"}"
    with pytest.raises(MalformedMessage):
        accept_command(command)


def test_nesting_skips_brackets_inside_strings() -> None:
    """Brackets in a string are text, not structure."""
    assert nesting('{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert nesting(r'{"a": "\"[[["}') == 1
    check_nesting('{"labels": {"a": "[[[[[[[[[[[["}}')


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"preset": "p" * 1000}, "preset"),
        ({"preset": "fast -i /etc/passwd"}, "preset"),
        ({"approval_required": True, "approval_prompt": "x" * 10_000}, "approval_prompt"),
        ({"labels": {"team": "v" * 257}}, "labels"),
        ({"labels": {"team\n": "a"}}, "labels"),
        ({"scenario": "s" * 10_000}, "scenario"),
        ({"input": "/in/" + "a" * 5000 + ".mp4"}, "input"),
        ({"output": "/out/" + "a" * 5000 + ".mp4"}, "output"),
    ],
)
def test_every_spec_string_has_a_limit_at_every_door(change: dict[str, Any], field: str) -> None:
    """A spec string past its limit: one line from the CLI, a refusal event from the scheduler."""
    raw = {"scenario": "720p-h264", **change}
    with pytest.raises(InvalidSpec) as refused:
        parse_spec(msgspec.json.encode(raw))
    assert refused.value.field.startswith(field)
    spec = msgspec.convert(raw, JobSpec)
    (event,) = decide(initial("j"), SubmitJob(id="s1", job="j", at=1.0, spec=spec), 1.0)
    assert isinstance(event, CommandRefused)
    assert field in event.reason
    assert len(event.reason) < 400


@pytest.mark.parametrize(
    "change",
    [{"preset": "p" * 100_000}, {"approval_required": True, "approval_prompt": "x" * 900_000}],
)
def test_the_reported_oversized_submits_are_refused_in_a_short_line(change: dict[str, Any]) -> None:
    """The 100 KB preset and 900 KB prompt of the review: refused, the reason stays short."""
    spec = msgspec.convert({"scenario": "720p-h264", **change}, JobSpec)
    (event,) = decide(initial("j"), SubmitJob(id="s1", job="j", at=1.0, spec=spec), 1.0)
    assert isinstance(event, CommandRefused)
    assert len(event.reason) < 400


def test_a_spec_within_every_limit_is_submitted() -> None:
    """The limits leave room for what a farm asks."""
    spec = parse_spec(
        msgspec.json.encode(
            {
                "scenario": "720p-h264",
                "preset": "veryfast",
                "approval_required": True,
                "approval_prompt": "Run the\nnight batch?",
                "labels": {"team": "v" * 256},
            }
        )
    )
    (event,) = decide(initial("j"), SubmitJob(id="s1", job="j", at=1.0, spec=spec), 1.0)
    assert isinstance(event, JobSubmitted)
