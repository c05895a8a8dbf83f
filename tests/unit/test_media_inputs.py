"""Inputs are data, not code: test patterns are a fixed set of sources, paths are absolute."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.errors import InvalidSpec
from events.media import PATTERN_SOURCES, Pattern, check_path, parse_pattern, within
from events.spec import JobSpec, validate

HOSTILE = [
    "testsrc2=size=160x90,drawtext=textfile=/etc/passwd",
    "testsrc2,drawtext=textfile=/etc/shadow",
    "testsrc2=s=64x64[a];movie=/etc/passwd[b];[a][b]overlay",
    "color=c=red:s=64x64,psnr=stats_file=/tmp/x",
    "testsrc2=size=160x90:rate=30:filename=/etc/passwd",
    "smptebars=size=160x90;testsrc",
    "testsrc2=size=1x1:size=2x2",
    "testsrc2=size=99999x1",
    "testsrc2=rate=0",
    "testsrc2=duration=-1",
    "testsrc2=color=red",
    "testsrc2 =size=160x90",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_filter_graphs_and_unknown_options_are_refused(value: str) -> None:
    """Anything but a plain source with size, rate, duration (color) is a one-line InvalidSpec."""
    with pytest.raises(InvalidSpec) as err:
        validate(JobSpec(scenario="480p-h264", input=value))
    assert err.value.field == "input"
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("value", "lavfi"),
    [
        ("testsrc2", "testsrc2=size=854x480:rate=30"),
        ("smptebars=size=160x90:rate=25", "smptebars=size=160x90:rate=25"),
        ("testsrc2=s=160x90:r=30:d=2.5", "testsrc2=size=160x90:rate=30:duration=2.5"),
        ("color=color=0x112233:size=64x64", "color=size=64x64:rate=30:color=0x112233"),
    ],
)
def test_valid_patterns_are_rebuilt_from_their_parts(value: str, lavfi: str) -> None:
    """The FFmpeg source is rebuilt from the parsed values, at the scenario's size and rate."""
    assert validate(JobSpec(scenario="480p-h264", input=value)).input == value
    assert parse_pattern(value).lavfi(854, 480, 30) == lavfi


@given(st.sampled_from(sorted(PATTERN_SOURCES)), st.text(max_size=60))
def test_no_input_yields_a_graph(source: str, tail: str) -> None:
    """Whatever follows a source name, the rebuilt source is one filter with known options."""
    try:
        pattern = parse_pattern(source + tail)
    except InvalidSpec:
        return
    built = pattern.lavfi(64, 64, 30)
    assert re.fullmatch(r"[a-z0-9]+=size=\d+x\d+:rate=\d+(:duration=[\d.e+]+)?(:color=\w+)?", built)


@given(st.builds(Pattern, source=st.sampled_from(sorted(PATTERN_SOURCES - {"color"})),
                 width=st.integers(1, 8192), height=st.integers(1, 8192),
                 rate=st.integers(1, 240)))  # fmt: skip
def test_what_is_built_parses_back(pattern: Pattern) -> None:
    """A pattern written out as FFmpeg's source string parses to itself."""
    assert parse_pattern(pattern.lavfi(1, 1, 1)) == pattern


@pytest.mark.parametrize(
    ("field", "value"),
    [("input", "in.mp4"), ("input", "media/in.mp4"), ("output", "out.mp4"),
     ("output", "./out.mp4"), ("output", "/media/../etc/x.mp4"), ("input", "~/in.mp4")],
)  # fmt: skip
def test_relative_paths_are_refused(field: str, value: str) -> None:
    """A relative path would resolve on whichever agent runs the job: refused, naming the field."""
    with pytest.raises(InvalidSpec) as err:
        validate(JobSpec(scenario="480p-h264", **{field: value}))  # type: ignore[arg-type]
    assert err.value.field == field


@pytest.mark.parametrize(
    ("path", "roots", "inside"),
    [
        ("/media/a.mp4", ("/media",), True),
        ("/media/sub/a.mp4", ("/srv", "/media"), True),
        ("/mediax/a.mp4", ("/media",), False),
        ("/etc/passwd", ("/media",), False),
        ("/etc/passwd", (), True),
    ],
)
def test_within_media_roots(path: str, roots: tuple[str, ...], inside: bool) -> None:
    """A path is inside a root only under it, not beside it with a shared prefix."""
    assert within(PurePosixPath(path), tuple(PurePosixPath(r) for r in roots)) is inside


def _old_rule(value: str) -> bool:
    """The rule ``check_path`` had before its regex: any character below U+0020 is refused."""
    return any(ord(c) < 32 for c in value)


@pytest.mark.parametrize("char", [chr(c) for c in range(32)])
def test_a_path_with_a_c0_control_character_is_refused(char: str) -> None:
    """Each of U+0000..U+001F in a path is refused (a NUL or newline could split an argv)."""
    with pytest.raises(InvalidSpec, match="control characters"):
        check_path("input", f"/media/a{char}b.mp4")


@pytest.mark.parametrize("char", [" ", "~", "\x7f", "\x85", "\u00a0", "\u2028", "é", "\U0001f3ac"])
def test_a_path_with_other_characters_is_accepted(char: str) -> None:
    """DEL, C1 controls and Unicode separators were never refused: the check stays C0 only."""
    check_path("output", f"/media/a{char}b.mp4")


@given(st.text(max_size=40))
def test_the_control_check_matches_the_per_character_rule(name: str) -> None:
    """Any path: refused exactly when the old per-character rule refused it."""
    value = "/media/" + name.replace("/", "_").replace(".", "_")
    if _old_rule(value):
        with pytest.raises(InvalidSpec):
            check_path("input", value)
    else:
        check_path("input", value)
