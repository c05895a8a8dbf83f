"""Settings of every ``ffrtmp`` command: the config file, then the environment, then flags.

One resolution for every command, the long-running ones included (``scheduler run``, ``agent
run``, ``projector run``, ``exporter run``, ``check``, ``streams create``, ``up``), so a farm is
described once. Highest first:

1. flags: ``--nats``, ``--prefix``, ``--output``, ``--nats-user``, ``--nats-password-file``,
   ``--nats-creds``, ``--tls-ca``, ``--tls-cert``, ``--tls-key``, ``--replicas``;
2. the environment: ``FFRTMP_NATS_URL``, ``FFRTMP_PREFIX``, ``FFRTMP_OUTPUT``,
   ``FFRTMP_NATS_USER``, ``FFRTMP_NATS_PASSWORD``, ``FFRTMP_NATS_PASSWORD_FILE``,
   ``FFRTMP_NATS_CREDS``, ``FFRTMP_TLS_CA``, ``FFRTMP_TLS_CERT``, ``FFRTMP_TLS_KEY``,
   ``FFRTMP_REPLICAS``;
3. a TOML file, ``$FFRTMP_CONFIG``, else ``$XDG_CONFIG_HOME/ffrtmp/config.toml``, else
   ``~/.config/ffrtmp/config.toml``, whose keys are ``Config``'s fields;
4. the defaults, stated once in ``Config``.

A password is never a flag (it would show in ``ps``): it comes from ``FFRTMP_NATS_PASSWORD`` or
a file (``--nats-password-file``, ``password_file`` in the config). The config file is read when
a command runs, never at import.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from events.connection import DEFAULT_URL, NatsOptions, read_secret
from events.errors import InvalidSpec
from events.subjects import DEFAULT_PREFIX, Subjects


class Output(StrEnum):
    """How a command prints: a table for people, JSON (stable, see docs/api.md) for programs."""

    TABLE = "table"
    JSON = "json"


class Config(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Every setting and its default; the config file's keys (an unknown key is an error)."""

    nats: str = DEFAULT_URL
    prefix: str = DEFAULT_PREFIX
    output: Output = Output.TABLE
    user: str | None = None
    password_file: str | None = None
    creds: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    replicas: int | None = None
    """Replicas of the streams and buckets ``ffrtmp streams create`` makes (None: keep, or 1)."""


ENVIRONMENT: Final = {
    "nats": "FFRTMP_NATS_URL",
    "prefix": "FFRTMP_PREFIX",
    "output": "FFRTMP_OUTPUT",
    "user": "FFRTMP_NATS_USER",
    "password_file": "FFRTMP_NATS_PASSWORD_FILE",
    "creds": "FFRTMP_NATS_CREDS",
    "tls_ca": "FFRTMP_TLS_CA",
    "tls_cert": "FFRTMP_TLS_CERT",
    "tls_key": "FFRTMP_TLS_KEY",
    "replicas": "FFRTMP_REPLICAS",
}
"""Each setting's environment variable (the password's is ``PASSWORD_VARIABLE``)."""
PASSWORD_VARIABLE: Final = "FFRTMP_NATS_PASSWORD"  # noqa: S105 -- a name, not a secret
CREDENTIAL_VARIABLES: Final = frozenset(
    {PASSWORD_VARIABLE}
    | {ENVIRONMENT[k] for k in ("user", "password_file", "creds", "tls_ca", "tls_cert", "tls_key")}
)
"""Who to be and how to trust the server: meant for a farm elsewhere, not ``up``'s own."""


def without_credentials(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` less ``CREDENTIAL_VARIABLES``: what ``ffrtmp up`` gives its children."""
    return {k: v for k, v in env.items() if k not in CREDENTIAL_VARIABLES}


def config_path() -> Path:
    """Where the config file is looked for."""
    explicit = os.environ.get("FFRTMP_CONFIG")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ffrtmp" / "config.toml"


def _file_values(path: Path | None = None) -> dict[str, object]:
    """The config file's settings as written, or none when there is no file."""
    path = path or config_path()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if os.environ.get("FFRTMP_CONFIG"):
            raise InvalidSpec("FFRTMP_CONFIG", f"{path} does not exist") from None
        return {}
    except OSError as exc:
        raise InvalidSpec("config", f"cannot read {path}: {exc.strerror}") from exc
    try:
        values = tomllib.loads(raw.decode())
        msgspec.convert(values, Config)  # names a bad key or value, with the file
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, msgspec.ValidationError) as exc:
        raise InvalidSpec("config", f"{path}: {exc}") from exc
    return values


def load_config(path: Path | None = None) -> Config:
    """The config file's settings over the defaults."""
    return msgspec.convert(_file_values(path), Config)


def _env_values(env: Mapping[str, str]) -> dict[str, object]:
    found: dict[str, object] = {}
    for key, variable in ENVIRONMENT.items():
        value = env.get(variable)
        if value:
            found[key] = value
    return found


def resolve(
    flags: Mapping[str, object] | None = None, env: Mapping[str, str] | None = None
) -> Config:
    """Defaults, overridden by the file, by the environment, then by the flags that were given."""
    env = os.environ if env is None else env
    values = _file_values() | _env_values(env)
    values |= {key: value for key, value in (flags or {}).items() if value is not None}
    try:
        return msgspec.convert(values, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise InvalidSpec(
            "settings", f"{exc} (from the flags, the environment or the file)"
        ) from exc


def nats_options(config: Config, env: Mapping[str, str] | None = None) -> NatsOptions:
    """How to connect: the URL, the user and its secret (never from a flag), TLS."""
    env = os.environ if env is None else env
    password = env.get(PASSWORD_VARIABLE) or None
    if password is None and config.password_file:
        password = read_secret(config.password_file)
    if password is not None and not config.user:
        raise InvalidSpec(
            "FFRTMP_NATS_USER", "a password is given but no user: set --nats-user or the variable"
        )
    return NatsOptions(
        url=config.nats,
        user=config.user,
        password=password,
        creds=config.creds,
        tls_ca=config.tls_ca,
        tls_cert=config.tls_cert,
        tls_key=config.tls_key,
    )


def subjects(config: Config) -> Subjects:
    """The subject and stream names under the configured prefix."""
    return Subjects(config.prefix)
