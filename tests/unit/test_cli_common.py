"""CLI foundations: settings precedence, the config file, times, and what history shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from events.commands import SubmitJob
from events.errors import InvalidSpec
from events.job import decide, evolve, initial
from events.spec import JobSpec
from ffrtmp.cli.common import Output, ago, target, when
from ffrtmp.client.render import changes
from ffrtmp.client.times import parse_time
from ffrtmp.config import load_config

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", NOW - 30),
        ("10m", NOW - 600),
        ("2h", NOW - 7200),
        ("1d", NOW - 86400),
        ("1.5h", NOW - 5400),
        ("2027-01-15T08:00:00Z", 1_800_000_000.0),
        ("2027-01-15T08:00:00", 1_800_000_000.0),
        ("2027-01-15T09:00:00+01:00", 1_800_000_000.0),
    ],
)
def test_times_parse_as_durations_ago_or_iso(text: str, expected: float) -> None:
    """Durations count back from now; ISO times without a zone are UTC."""
    assert parse_time(text, NOW) == pytest.approx(expected)


def test_a_bad_time_names_the_option() -> None:
    """Neither a duration nor an ISO time: the error says which option and what is accepted."""
    with pytest.raises(InvalidSpec, match=r"--at.*duration"):
        parse_time("yesterday", NOW, "--at")


def test_time_formatting() -> None:
    """Tables show UTC seconds and short ages; zero means never."""
    assert when(0.0) == ""
    assert when(1_800_000_000.0) == "2027-01-15 08:00:00Z"
    assert [ago(NOW - d, NOW) for d in (5, 180, 7200, 4 * 86400)] == ["5s", "3m", "2h", "4d"]


def test_config_file_sets_defaults_and_flags_win(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config file gives defaults; a flag overrides it; no file means the built-ins."""
    config = tmp_path / "config.toml"
    config.write_text('nats = "nats://farm:4222"\nprefix = "tenant"\noutput = "json"\n')
    monkeypatch.setenv("FFRTMP_CONFIG", str(config))
    chosen = target(None, None, None)
    assert (chosen.url, chosen.subjects.prefix, chosen.output) == (
        "nats://farm:4222", "tenant", Output.JSON,
    )  # fmt: skip
    flagged = target("nats://other:1", "p2", Output.TABLE)
    assert (flagged.url, flagged.subjects.prefix, flagged.json) == ("nats://other:1", "p2", False)
    monkeypatch.delenv("FFRTMP_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    assert target(None, None, None).url == "nats://127.0.0.1:4222"


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('natz = "x"\n', "natz"),
        ("nats = \n", "config"),
        ('output = "xml"\n', "xml"),
    ],
)
def test_a_bad_config_file_is_one_clear_error(tmp_path: Path, content: str, says: str) -> None:
    """A typo, broken TOML or a bad value in the config file is an error naming the file."""
    config = tmp_path / "config.toml"
    config.write_text(content)
    with pytest.raises(InvalidSpec, match=says) as caught:
        load_config(config)
    assert str(config) in str(caught.value)


def test_a_missing_config_named_by_the_environment_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FFRTMP_CONFIG pointing nowhere is a mistake worth saying."""
    monkeypatch.setenv("FFRTMP_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(InvalidSpec, match="does not exist"):
        load_config()


def test_changes_name_what_an_event_changed() -> None:
    """History's CHANGED column lists the visible fields an event moved."""
    state = initial("j")
    command = SubmitJob(id="c", job="j", at=1.0, spec=JobSpec(scenario="720p-h264"))
    (event,) = decide(state, command, 1.0)
    assert changes(state, evolve(state, event)) == "status new→queued"
