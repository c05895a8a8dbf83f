"""The one boundary where nats-py's errors become ffrtmp's (``events.errors``).

nats-py raises a tree of its own (``nats.errors.Error``; JetStream's ``APIError`` and its
subclasses; its ``TimeoutError``, which is the builtin one) and sockets raise ``OSError``.
Every module that speaks to NATS wraps its calls in one of the context managers below, so its
callers match on ``FfrtmpError`` only and a person reads one line naming the server and what to
do. Each site says what a failure means in its own words; which nats-py errors count as a
failure is written here once. A site that must act on one specific nats-py error ("stream not
found: create it", "no responders: no projector runs") keeps a narrow ``except`` inside the
boundary, with a comment saying why.

    nats-py                              ours
    NotFoundError (the event stream)     StoreUnavailable: run the setup
    ServiceUnavailableError (503)        StoreUnavailable: the server has no JetStream
    APIError (any other refusal)         FfrtmpError naming the refusal
    MaxPayloadError, BadSubjectError     FfrtmpError: this message is refused, not an outage
    TimeoutError                         StoreUnavailable: no answer
    nats.errors.Error, OSError           StoreUnavailable (or the site's own FfrtmpError)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.errors import BadSubjectError, MaxPayloadError
from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError, ServiceUnavailableError

from events.errors import FfrtmpError, StoreUnavailable
from events.redact import redact

NO_JETSTREAM: Final = "the server has no JetStream: run `ffrtmp server` (or nats-server -js)"
FAILURES: Final = (NatsError, TimeoutError, OSError)
"""What a NATS call raises when it fails: for a probe whose answer to a failure is "no"."""


def url_of(nc: NatsClient) -> str:
    """The URL the client is connected to, to name what failed ("?" while it is not)."""
    return nc.connected_url.geturl() if nc.connected_url else "?"


def client_url(js: JetStreamContext) -> str:
    """The URL the context's client is connected to, its password hidden ("?" if unknown).

    nats-py keeps a JetStreamContext's client private (``_nc``, pinned with nats-py 2.16; a
    unit test fails loudly if it goes). Naming the server must never turn a failure into a
    crash, so a context without it names none.
    """
    nc = getattr(js, "_nc", None)
    return redact(url_of(nc)) if isinstance(nc, NatsClient) else "?"


@contextlib.contextmanager
def failing_as(make: Callable[[Exception], FfrtmpError]) -> Iterator[None]:
    """Any NATS failure inside becomes ``make(failure)``: the site's own words for it."""
    try:
        yield
    except FAILURES as exc:
        raise make(exc) from exc


def unavailable(url: str, doing: str) -> contextlib.AbstractContextManager[None]:
    """Any NATS failure inside is ``StoreUnavailable`` at ``url``: "``doing``: what failed"."""
    return failing_as(lambda exc: StoreUnavailable(url, f"{doing}: {exc}"))


@contextlib.contextmanager
def refused_as(doing: str) -> Iterator[None]:
    """A JetStream API refusal inside is one line: "``doing``: the server's description"."""
    try:
        yield
    except APIError as exc:
        raise FfrtmpError(f"{doing}: {exc.description}") from exc


@contextlib.contextmanager
def jetstream_boundary(js: JetStreamContext, kind: str, what: str, action: str) -> Iterator[None]:
    """Translate NATS failures of ``action`` on ``what`` (a ``kind`` of thing) into ours."""
    try:
        yield
    except ServiceUnavailableError as exc:
        raise StoreUnavailable(client_url(js), NO_JETSTREAM) from exc
    except APIError as exc:
        raise FfrtmpError(f"{what}: {action} refused: {exc.description}") from exc
    except TimeoutError as exc:
        raise StoreUnavailable(client_url(js), f"no answer to {kind} {action}") from exc
    except (NatsError, OSError) as exc:
        detail = f"{kind} {action}: {type(exc).__name__}"
        raise StoreUnavailable(client_url(js), detail) from exc


@contextlib.contextmanager
def store_boundary(url: str, *, missing: str, timeout_s: float) -> Iterator[None]:
    """The event store's translation: ``missing`` says what to do when its stream is not there."""
    try:
        yield
    except NotFoundError as exc:
        raise StoreUnavailable(url, missing) from exc
    except ServiceUnavailableError as exc:
        raise StoreUnavailable(url, NO_JETSTREAM) from exc
    except APIError as exc:
        raise FfrtmpError(f"JetStream refused: {exc.description}") from exc
    except MaxPayloadError as exc:
        raise FfrtmpError("an event is larger than the server's max_payload") from exc
    except BadSubjectError as exc:  # a refusal of this message, not an outage
        raise FfrtmpError("the server refuses the subject: not a valid NATS subject") from exc
    except TimeoutError as exc:
        raise StoreUnavailable(url, f"no answer in {timeout_s} s") from exc
    except (NatsError, OSError) as exc:
        raise StoreUnavailable(url, f"{type(exc).__name__}: {exc}") from exc
