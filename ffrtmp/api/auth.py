"""Bearer tokens with a role: who may read (viewer) and who may also steer (operator).

Tokens come from a file or the environment (``FFRTMP_API_TOKENS``), never from a command line,
where ``ps`` would show them. Each entry is ``role:name:token`` (one a line in a file, comma
separated in the environment); ``name`` is recorded as the ``by`` of the commands sent with it.
A token is compared in constant time, and only its hash is kept in memory.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
from enum import StrEnum
from pathlib import Path
from typing import Final

import msgspec

from events.errors import FfrtmpError

ENV: Final = "FFRTMP_API_TOKENS"
MIN_TOKEN_CHARS: Final = 16


class Role(StrEnum):
    """What a token may do: a viewer reads, an operator also sends commands."""

    VIEWER = "viewer"
    OPERATOR = "operator"


RANK: Final = {Role.VIEWER: 0, Role.OPERATOR: 1}


class Caller(msgspec.Struct, frozen=True):
    """Who sent a request: the token's name and role (anonymous operator on an open API)."""

    name: str
    role: Role

    def may(self, needed: Role) -> bool:
        """Whether this caller's role covers ``needed``."""
        return RANK[self.role] >= RANK[needed]


OPEN: Final = Caller("api", Role.OPERATOR)
"""The caller of an API that runs without tokens (a local farm on 127.0.0.1)."""


class _Entry(msgspec.Struct, frozen=True):
    digest: bytes
    caller: Caller


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Tokens:
    """The accepted tokens; empty means the API runs open."""

    def __init__(self, entries: list[tuple[Role, str, str]]) -> None:
        """From ``(role, name, token)`` triples already checked by ``parse_tokens``."""
        self._entries = [_Entry(_digest(t), Caller(name, role)) for role, name, t in entries]

    def __bool__(self) -> bool:
        """Whether any token is configured."""
        return bool(self._entries)

    def __len__(self) -> int:
        """How many tokens are configured."""
        return len(self._entries)

    def caller(self, authorization: str | None) -> Caller | None:
        """The caller an ``Authorization`` header names; None when it names none we accept."""
        if not self._entries:
            return OPEN
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = _digest(token.strip())
        found = None
        for entry in self._entries:  # every entry compared: no timing on which one matched
            if hmac.compare_digest(entry.digest, digest):
                found = entry.caller
        return found


def parse_tokens(text: str, where: str) -> list[tuple[Role, str, str]]:
    """``role:name:token`` entries (lines or commas; ``#`` comments); a bad one is one line."""
    found = []
    for number, raw in enumerate(text.replace(",", "\n").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        role, _, rest = line.partition(":")
        name, _, token = rest.partition(":")
        if role not in Role.__members__.values():
            raise FfrtmpError(f"{where} entry {number}: role {role!r} is not viewer or operator")
        if not name or not token:
            raise FfrtmpError(f"{where} entry {number}: write it as role:name:token")
        if len(token) < MIN_TOKEN_CHARS:
            raise FfrtmpError(
                f"{where} entry {number}: the token is shorter than {MIN_TOKEN_CHARS} characters"
            )
        found.append((Role(role), name, token))
    return found


def load_tokens(path: Path | None) -> Tokens:
    """The tokens of ``path`` and of ``FFRTMP_API_TOKENS``; none when neither says any."""
    entries = parse_tokens(os.environ.get(ENV, ""), ENV)
    if path is not None:
        try:
            text = path.read_text()
        except OSError as exc:
            raise FfrtmpError(f"cannot read the tokens file {path}: {exc.strerror}") from None
        entries += parse_tokens(text, str(path))
    return Tokens(entries)


def is_loopback(host: str) -> bool:
    """Whether an API bound to ``host`` is reachable from this machine only (it may run open)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token (32 bytes, URL-safe)."""
    import secrets  # noqa: PLC0415 -- only ``ffrtmp api token`` makes one

    return secrets.token_urlsafe(32)
