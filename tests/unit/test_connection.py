"""Connection settings: secrets never shown, the server's version judged, settings resolved once."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from events.connection import MIN_SERVER, NatsOptions, inbox_for, version_problem
from events.errors import InvalidSpec, StoreUnavailable
from events.redact import redact
from ffrtmp.cli import connflags
from ffrtmp.config import Output, nats_options, resolve

SECRET = "s3cr3t-pw"  # noqa: S105 -- a test value


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("nats://op:s3cr3t-pw@h:4222", "nats://op:***@h:4222"),
        ("tls://a:s3cr3t-pw@h1:4222,tls://b:s3cr3t-pw@h2:4222", "tls://a:***@h1:4222,tls://b:***@h2:4222"),
        ("at nats://s3cr3t-pw@h:4222: refused", "at nats://***@h:4222: refused"),
        ("nats://h:4222", "nats://h:4222"),
    ],
)  # fmt: skip
def test_redact_hides_every_password_and_token(text: str, shown: str) -> None:
    """A URL keeps its user and host; its password or token becomes ***."""
    assert redact(text) == shown


@given(
    st.text(
        alphabet=st.characters(categories=("L", "N", "P", "S"), exclude_characters="@/,:"),
        min_size=1,
    )
)
def test_no_password_survives_redaction(secret: str) -> None:
    """Whatever the password, it does not appear in the redacted URL (nor in an error)."""
    assume(secret != "***")  # noqa: S105 -- the mask itself is no leak
    url = f"nats://user:{secret}@host:4222"
    assert f":{secret}@" not in redact(url)
    assert f":{secret}@" not in str(StoreUnavailable(url, "hint"))


def test_options_never_print_the_password() -> None:
    """The options' repr and shown URL leave the password out."""
    options = NatsOptions(url=f"nats://u:{SECRET}@h:1", user="u", password=SECRET)
    assert SECRET not in repr(options)
    assert SECRET not in options.shown


@pytest.mark.parametrize(
    ("found", "ok"),
    [("2.15.1", True), ("2.12.0", True), ("2.11.9", False), ("2.9.10", False),
     ("3.0.0-beta", True), ("", False)],
)  # fmt: skip
def test_the_minimum_server_is_2_12(found: str, ok: bool) -> None:
    """An older server is refused naming both versions; 2.12 and newer pass."""
    problem = version_problem(found, "nats://h:1")
    assert (problem is None) is ok
    if problem is not None:
        assert ".".join(map(str, MIN_SERVER)) in problem
        assert (found or "unknown") in problem


def test_each_user_has_its_own_inbox() -> None:
    """Replies come back under the user's name, or the default inbox without a user."""
    assert inbox_for("agent-a1") == "_INBOX.agent-a1"
    assert inbox_for(None) == "_INBOX"
    assert NatsOptions(url="nats://op:pw@h:1").login == "op"


def test_settings_come_from_flags_then_environment_then_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One resolution: a flag beats the environment, which beats the file, which beats defaults."""
    config = tmp_path / "c.toml"
    config.write_text('nats = "nats://file:1"\nprefix = "fromfile"\ntls_ca = "/file/ca.pem"\n')
    monkeypatch.setenv("FFRTMP_CONFIG", str(config))
    env = {"FFRTMP_PREFIX": "fromenv", "FFRTMP_NATS_USER": "op", "FFRTMP_REPLICAS": "3"}
    settings = resolve({"nats": "nats://flag:1", "prefix": None}, env)
    assert (settings.nats, settings.prefix, settings.tls_ca) == (
        "nats://flag:1", "fromenv", "/file/ca.pem",
    )  # fmt: skip
    assert (settings.user, settings.replicas, settings.output) == ("op", 3, Output.TABLE)


def test_the_password_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    """No flag carries a password: the variable, else the file; a password needs a user."""
    secret = tmp_path / "pw"
    secret.write_text(f"{SECRET}\n")
    from_file = nats_options(resolve({"user": "op", "password_file": str(secret)}, {}), {})
    assert from_file.password == SECRET
    env = {"FFRTMP_NATS_PASSWORD": "other"}
    assert nats_options(resolve({"user": "op"}, env), env).password == env["FFRTMP_NATS_PASSWORD"]
    with pytest.raises(InvalidSpec, match="no user"):
        nats_options(resolve({}, env), env)


def test_connection_flags_are_taken_wherever_they_stand() -> None:
    """The flags leave the argument list (both spellings) and are kept for the settings."""
    rest = connflags.take(["jobs", "list", "--tls-ca", "/ca.pem", "--nats-user=op", "-o", "json"])
    assert rest == ["jobs", "list", "-o", "json"]
    assert connflags.given() == {"tls_ca": "/ca.pem", "user": "op"}
    assert connflags.take(["sql", "--", "--tls-ca"]) == ["sql", "--", "--tls-ca"]
    with pytest.raises(InvalidSpec, match="--tls-ca"):
        connflags.take(["jobs", "list", "--tls-ca"])
