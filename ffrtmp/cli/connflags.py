"""The connection flags every command takes, read once instead of in each signature.

``--nats-user``, ``--nats-password-file``, ``--nats-creds``, ``--tls-ca``, ``--tls-cert`` and
``--tls-key`` mean the same on every command, wherever they stand on the line: ``take`` lifts
them out of the arguments before the command line is parsed (as ``--debug`` is), and what was
given is kept here for ``ffrtmp.config.resolve``. There is deliberately no password flag: a
command line is visible to every user of the machine (``ps``).
"""

from __future__ import annotations

from typing import Final

from events.errors import InvalidSpec

_GIVEN: dict[str, object] = {}

OPTIONS: Final = {
    "--nats-user": ("user", "NATS user (password: FFRTMP_NATS_PASSWORD or a password file)"),
    "--nats-password-file": ("password_file", "file holding the NATS user's password"),
    "--nats-creds": ("creds", "NATS .creds file (user JWT and nkey seed)"),
    "--tls-ca": ("tls_ca", "CA that signed the server's certificate"),
    "--tls-cert": ("tls_cert", "client certificate, for mutual TLS"),
    "--tls-key": ("tls_key", "the client certificate's key"),
}

HELP: Final = "Connection flags, on every command: " + "; ".join(
    f"{flag} ({text})" for flag, (_, text) in OPTIONS.items()
)


def given() -> dict[str, object]:
    """The connection flags of the command being run."""
    return dict(_GIVEN)


def take(argv: list[str]) -> list[str]:
    """``argv`` without the connection flags, which are kept for ``given``; up to ``--``."""
    _GIVEN.clear()
    rest: list[str] = []
    items = iter(argv)
    for item in items:
        if item == "--":
            rest += [item, *items]
            break
        flag, eq, value = item.partition("=")
        if flag not in OPTIONS:
            rest.append(item)
            continue
        if not eq:
            value = next(items, "")
        if not value or value.startswith("--"):
            raise InvalidSpec(flag, "needs a value, e.g. " + f"{flag} /path")
        _GIVEN[OPTIONS[flag][0]] = value
    return rest
