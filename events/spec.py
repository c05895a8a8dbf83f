"""The job spec: what an operator asks for, validated before anything is recorded.

A spec is user input, so it is strict: unknown fields are an error, every value is checked, and
every error names the field and says how to fix it. ``validate`` returns the spec in canonical
form (scenario spelled as the catalogue spells it), so the log holds one spelling.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Final

import msgspec

from events.enums import Engine, Priority, QualityMetric, Queue
from events.errors import InvalidSpec
from events.limits import check_nesting, check_preset, check_spec_strings, check_text
from events.media import check_path, is_pattern, parse_pattern
from events.scenarios import canonical_name

MAX_DURATION_S: Final = 24 * 3600.0
PATTERN_DURATION_S: Final = 10.0
"""What a test pattern sent to a file or nowhere encodes when the spec gives no duration."""
MAX_RETRIES_LIMIT: Final = 10
MAX_LABELS: Final = 32
MAX_LABEL_VALUE: Final = 256
MAX_SPEC_BYTES: Final = 64 * 1024  # a spec file: far more than any spec needs
_LABEL_KEY: Final = re.compile(r"[a-z][a-z0-9_.-]{0,62}")


class InputKind(StrEnum):
    """Where a job's frames come from."""

    PATTERN = "pattern"  # one of a fixed set of test sources, e.g. ``testsrc2`` (events.media)
    FILE = "file"
    URL = "url"


class OutputKind(StrEnum):
    """Where a job's encoded stream goes."""

    NONE = "none"  # encode and discard: a benchmark
    FILE = "file"
    RTMP = "rtmp"
    SRT = "srt"


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything an operator can say about one job; defaults are what a farm expects.

    The struct tolerates unknown fields so that events written by newer code still decode;
    what a person writes goes through ``parse_spec``, which refuses them.
    """

    scenario: str
    engine: Engine = Engine.FFMPEG
    input: str = "testsrc2"
    output: str = "none"
    # Seconds of media to encode. None: the whole input for a file or URL (a live source: until
    # it ends), until canceled for a test pattern sent live; ``validate`` sets 10 s for a test
    # pattern sent to a file or nowhere (see ``planned_duration_s``).
    duration_s: float | None = None
    queue: Queue = Queue.DEFAULT
    priority: Priority = Priority.MEDIUM
    max_retries: int = 3
    timeout_s: float | None = None  # overrides the budget derived from scenario and duration
    approval_required: bool = False
    approval_prompt: str = ""
    quality_metrics: tuple[QualityMetric, ...] = ()
    labels: dict[str, str] = {}
    preset: str | None = None  # encoder preset; None lets the agent choose for its machine
    overwrite: bool = False  # replace an existing output file; else the job refuses to run


def input_kind(value: str) -> InputKind:
    """Classify an input: a test-pattern source, a URL, or a file path."""
    if is_pattern(value):
        return InputKind.PATTERN
    if "://" in value:
        return InputKind.URL
    return InputKind.FILE


def output_kind(value: str) -> OutputKind:
    """Classify an output: none, an RTMP or SRT URL, or a file path."""
    if value in {"none", "null", ""}:
        return OutputKind.NONE
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in {"rtmp", "rtmps"}:
        return OutputKind.RTMP
    if scheme == "srt":
        return OutputKind.SRT
    if scheme:
        raise InvalidSpec(
            "output", f"unsupported scheme {scheme}://; use a file path, rtmp://, srt:// or none"
        )
    return OutputKind.FILE


def is_live(spec: JobSpec) -> bool:
    """Whether the output is a live destination (RTMP, SRT): paced at real time, 1.0x at best."""
    return output_kind(spec.output) in {OutputKind.RTMP, OutputKind.SRT}


def planned_duration_s(spec: JobSpec) -> float | None:
    """Seconds of media the job encodes, or None when only the input can tell (or never ends).

    The spec's duration when it gives one; else 10 s of a test pattern sent to a file or
    nowhere; else None: the whole file or URL (known once the agent has opened it), or a test
    pattern streamed live until it is canceled.
    """
    if spec.duration_s is not None:
        return spec.duration_s
    if input_kind(spec.input) is InputKind.PATTERN and not is_live(spec):
        return PATTERN_DURATION_S
    return None


def duration_words(spec: JobSpec) -> str:
    """The job's length as a person reads it: ``30 s``, ``the whole input``, ``until canceled``."""
    planned = planned_duration_s(spec)
    if planned is not None:
        return f"{planned:g} s"
    return "until canceled" if input_kind(spec.input) is InputKind.PATTERN else "the whole input"


def _check_input(value: str) -> None:
    if not value.strip():
        raise InvalidSpec("input", "empty; give a test pattern (testsrc2), a file path or a URL")
    kind = input_kind(value)
    if kind is InputKind.PATTERN:
        parse_pattern(value)
    elif kind is InputKind.FILE:
        check_path("input", value)
    else:
        scheme = value.split("://", 1)[0].lower()
        if scheme not in {"http", "https", "rtmp", "rtmps", "srt", "udp", "rtsp"}:
            raise InvalidSpec("input", f"unsupported scheme {scheme}://; use http(s), rtmp, srt")


def _check_output(value: str) -> None:
    if output_kind(value) is not OutputKind.FILE:
        return
    check_path("output", value)
    if PurePosixPath(value).suffix == "":
        raise InvalidSpec(
            "output", f"{value!r} has no file extension; FFmpeg picks the container from it"
        )


def _check_numbers(spec: JobSpec) -> None:
    if spec.duration_s is not None and not 0 < spec.duration_s <= MAX_DURATION_S:
        raise InvalidSpec("duration_s", f"must be in (0, {MAX_DURATION_S:.0f}] seconds")
    if not 0 <= spec.max_retries <= MAX_RETRIES_LIMIT:
        raise InvalidSpec("max_retries", f"must be between 0 and {MAX_RETRIES_LIMIT}")
    if spec.timeout_s is not None and not 0 < spec.timeout_s <= 7 * MAX_DURATION_S:
        raise InvalidSpec("timeout_s", "must be a positive number of seconds, at most a week")


def _check_labels(labels: dict[str, str]) -> None:
    if len(labels) > MAX_LABELS:
        raise InvalidSpec("labels", f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not _LABEL_KEY.fullmatch(key):
            raise InvalidSpec(
                "labels", f"key {key!r} must be lowercase letters, digits, '_', '.', '-'"
            )
        check_text(value, f"labels: value of {key!r}", MAX_LABEL_VALUE)


def validate(spec: JobSpec) -> JobSpec:
    """Check every field and return the spec with the scenario's canonical name."""
    check_spec_strings(spec.scenario, spec.input, spec.output, spec.approval_prompt)
    check_preset(spec.preset)
    name = canonical_name(spec.scenario)
    _check_input(spec.input)
    _check_output(spec.output)
    _check_numbers(spec)
    _check_labels(spec.labels)
    if len(set(spec.quality_metrics)) != len(spec.quality_metrics):
        raise InvalidSpec("quality_metrics", "each metric may be named once")
    if spec.approval_prompt and not spec.approval_required:
        raise InvalidSpec("approval_prompt", "only makes sense with approval_required")
    duration = planned_duration_s(spec)
    if name == spec.scenario and duration == spec.duration_s:
        return spec
    return msgspec.structs.replace(spec, scenario=name, duration_s=duration)


SPEC_FIELDS: Final = frozenset(JobSpec.__struct_fields__)


def parse_spec(data: bytes | str) -> JobSpec:
    """Decode a JSON spec a person wrote and validate it; unknown fields are an error."""
    if len(data) > MAX_SPEC_BYTES:
        raise InvalidSpec("spec", f"{len(data)} bytes; at most {MAX_SPEC_BYTES}")
    check_nesting(data)
    try:
        raw = msgspec.json.decode(data)
    except msgspec.DecodeError as exc:
        raise InvalidSpec("spec", f"not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidSpec("spec", "must be a JSON object")
    unknown = sorted(set(raw) - SPEC_FIELDS)
    if unknown:
        raise InvalidSpec(
            unknown[0], f"unknown field; known fields: {', '.join(sorted(SPEC_FIELDS))}"
        )
    try:
        spec = msgspec.convert(raw, JobSpec)
    except msgspec.ValidationError as exc:
        raise InvalidSpec("spec", str(exc)) from exc
    return validate(spec)
