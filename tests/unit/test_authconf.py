"""The generated NATS users: each agent pinned to its own subjects; the shipped file current."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.errors import InvalidSpec
from events.streams import all_streams
from events.subjects import Subjects
from ffrtmp.authconf import Role, render, users
from ffrtmp.cli import auth

ROOT = Path(__file__).resolve().parents[2]
SUBJECTS = Subjects("ffrtmp")


def test_an_agents_writes_name_only_itself() -> None:
    """Every subject an agent may publish outside the JetStream API names that agent."""
    by_name = {user.name: user for user in users(SUBJECTS, ["a1", "a2"])}
    agent = by_name["agent-a1"]
    assert agent.role is Role.AGENT
    ours = [s for s in agent.publish if s.startswith("ffrtmp.")]
    assert ours == [
        "ffrtmp.evt.job.*.a1",
        "ffrtmp.evt.agent.a1",
        "ffrtmp.hb.a1",
        "ffrtmp.dlq.agent-a1",
    ]
    api = [s for s in agent.publish if not s.startswith("ffrtmp.")]
    assert all("a2" not in s for s in api)
    assert agent.subscribe == ("_INBOX.agent-a1.>",)


def test_each_user_subscribes_to_its_own_inbox_only() -> None:
    """No user may read replies meant for another: every inbox permission names its user."""
    for user in users(SUBJECTS, ["a1", "a2"]):
        inboxes = [s for s in user.subscribe if s.startswith("_INBOX")]
        assert inboxes == [f"_INBOX.{user.name}.>"], user.name
        assert not [s for s in user.subscribe if s in {">", "_INBOX.>", "*"}], user.name


def test_the_permissions_follow_the_prefix() -> None:
    """Every farm subject a user is given carries the prefix: nothing is spelled out by hand."""
    for user in users(Subjects("acme"), ["a1"]):
        ours = [s for s in user.publish + user.subscribe if not s.startswith(("$", "_INBOX"))]
        assert all(s.startswith("acme.") for s in ours), user.name
        assert not [s for s in user.publish if "FFRTMP" in s or s.startswith("ffrtmp.")]


def test_readers_publish_no_log_subject() -> None:
    """The exporter publishes nothing but read requests; the operator adds commands and SQL."""
    by_name = {user.name: user for user in users(SUBJECTS, ["a1"])}
    assert not [s for s in by_name["exporter"].publish if s.startswith("ffrtmp.")]
    operator = [s for s in by_name["operator"].publish if s.startswith("ffrtmp.")]
    assert operator == ["ffrtmp.cmd.>", "ffrtmp.rpc.submit", "ffrtmp.api.>"]


def test_only_the_operator_asks_a_submit_and_only_the_scheduler_answers() -> None:
    """The submit request: the operator (CLI, API) publishes it, the scheduler alone reads it."""
    request = SUBJECTS.submit_request
    assert request == "ffrtmp.rpc.submit"
    askers = [user.name for user in users(SUBJECTS, ["a1"]) if request in user.publish]
    readers = [user for user in users(SUBJECTS, ["a1"]) if request in user.subscribe]
    assert askers == ["operator"]
    assert [user.name for user in readers] == ["scheduler"]
    assert readers[0].responses  # it answers on the asker's inbox


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` one token, ``>`` the rest."""
    want, have = pattern.split("."), subject.split(".")
    for index, part in enumerate(want):
        if part == ">":
            return len(have) > index
        if index >= len(have) or part not in {"*", have[index]}:
            return False
    return len(want) == len(have)


def test_no_stream_captures_the_submit_request() -> None:
    """A stream capturing the request subject would answer it with its own acknowledgement."""
    patterns = [s for config in all_streams(SUBJECTS) for s in config.subjects or []]
    assert _matches("ffrtmp.cmd.>", "ffrtmp.cmd.submit")  # the matcher itself
    assert patterns
    assert not [p for p in patterns if _matches(p, SUBJECTS.submit_request)]


@pytest.mark.parametrize("agents", [["sched"], ["a.b"], ["a1", "a1"], ["*"]])
def test_agent_ids_that_would_widen_permissions_are_refused(agents: list[str]) -> None:
    """The scheduler's writer name, wildcards, dots and duplicates cannot be agent ids."""
    with pytest.raises(InvalidSpec):
        users(SUBJECTS, agents)


def test_the_shipped_users_conf_is_what_the_generator_writes() -> None:
    """deploy/nats/users.conf is `ffrtmp auth conf --agents cpu-1,cpu-2,gpu-1`, not a stale copy."""
    shipped = (ROOT / "deploy/nats/users.conf").read_text()
    assert shipped == render(SUBJECTS, ["cpu-1", "cpu-2", "gpu-1"])


def test_auth_conf_takes_the_prefix_from_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ffrtmp auth conf` reads the prefix like every command: flag, environment, config file."""
    config = tmp_path / "c.toml"
    config.write_text('prefix = "fromfile"\n')
    monkeypatch.setenv("FFRTMP_CONFIG", str(config))
    monkeypatch.delenv("FFRTMP_PREFIX", raising=False)
    runner = CliRunner()
    assert '"fromfile.cmd.>"' in runner.invoke(auth.app, ["--agents", "a1"]).stdout
    env = {"FFRTMP_PREFIX": "fromenv"}
    assert '"fromenv.cmd.>"' in runner.invoke(auth.app, ["--agents", "a1"], env=env).stdout
