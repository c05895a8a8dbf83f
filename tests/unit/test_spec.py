"""Job specs: strict input, one clear message per mistake, canonical form in the log."""

from __future__ import annotations

import pytest

from events.enums import Priority, Queue
from events.errors import InvalidSpec
from events.spec import (
    InputKind,
    JobSpec,
    OutputKind,
    input_kind,
    output_kind,
    parse_spec,
    validate,
)


def test_defaults_are_what_a_farm_expects() -> None:
    """A spec naming only a scenario gets a test pattern, no output, default queue, 3 retries."""
    spec = parse_spec(b'{"scenario": "1080p-h264"}')
    assert (spec.input, spec.output, spec.queue, spec.priority) == (
        "testsrc2",
        "none",
        Queue.DEFAULT,
        Priority.MEDIUM,
    )
    assert spec.max_retries == 3


def test_scenario_is_stored_canonically() -> None:
    """An alias or odd casing is replaced by the catalogue's spelling."""
    assert validate(JobSpec(scenario="4k-nvenc")).scenario == "4K-h264-nvenc"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"scenario": "1080p-h264", "colour": "red"}', "colour"),
        (b'{"scenario": "nope"}', "scenario"),
        (b'{"scenario": "1080p-h264", "duration_s": 0}', "duration_s"),
        (b'{"scenario": "1080p-h264", "duration_s": 90000}', "duration_s"),
        (b'{"scenario": "1080p-h264", "max_retries": 11}', "max_retries"),
        (b'{"scenario": "1080p-h264", "max_retries": -1}', "max_retries"),
        (b'{"scenario": "1080p-h264", "timeout_s": -5}', "timeout_s"),
        (b'{"scenario": "1080p-h264", "queue": "urgent"}', "spec"),
        (b'{"scenario": "1080p-h264", "priority": "asap"}', "spec"),
        (b'{"scenario": "1080p-h264", "output": "ftp://x/y.mp4"}', "output"),
        (b'{"scenario": "1080p-h264", "output": "out"}', "output"),
        (b'{"scenario": "1080p-h264", "input": "gopher://x"}', "input"),
        (b'{"scenario": "1080p-h264", "input": " "}', "input"),
        (b'{"scenario": "1080p-h264", "labels": {"Bad Key": "x"}}', "labels"),
        (b'{"scenario": "1080p-h264", "quality_metrics": ["vmaf", "vmaf"]}', "quality_metrics"),
        (b'{"scenario": "1080p-h264", "quality_metrics": ["mos"]}', "spec"),
        (b'{"scenario": "1080p-h264", "approval_prompt": "ok?"}', "approval_prompt"),
        (b"[1, 2]", "spec"),
        (b"{not json", "spec"),
    ],
)
def test_bad_specs_name_the_field(raw: bytes, field: str) -> None:
    """Each mistake raises InvalidSpec naming the field at fault."""
    with pytest.raises(InvalidSpec) as caught:
        parse_spec(raw)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("testsrc2", InputKind.PATTERN),
        ("smptebars=size=160x90", InputKind.PATTERN),
        ("/media/in.mp4", InputKind.FILE),
        ("https://cdn.example/in.mp4", InputKind.URL),
        ("srt://127.0.0.1:9000", InputKind.URL),
    ],
)
def test_input_kinds(value: str, kind: InputKind) -> None:
    """Inputs are told apart by their form."""
    assert input_kind(value) is kind


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("none", OutputKind.NONE),
        ("out/a.mp4", OutputKind.FILE),
        ("rtmp://127.0.0.1/live/x", OutputKind.RTMP),
        ("srt://127.0.0.1:9000?mode=caller", OutputKind.SRT),
    ],
)
def test_output_kinds(value: str, kind: OutputKind) -> None:
    """Outputs are told apart by their form."""
    assert output_kind(value) is kind
