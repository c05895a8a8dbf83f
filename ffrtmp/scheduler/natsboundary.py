"""One translation of NATS failures for the scheduler's KV and object-store clients.

The lease and the snapshot store speak to JetStream through nats-py's KV and object-store
APIs; both turn what nats-py raises into ffrtmp's errors the same way, so the CLI shows one
line naming the server and what to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from nats.errors import Error as NatsError
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, ServiceUnavailableError

from events.errors import FfrtmpError, StoreUnavailable
from events.redact import redact

NO_JETSTREAM = "the server has no JetStream: run `ffrtmp server` (or nats-server -js)"


def client_url(js: JetStreamContext) -> str:
    """The URL the context's client is connected to, to name what failed."""
    # nats-py keeps a JetStreamContext's client private; its URL names what failed.
    url = js._nc.connected_url  # noqa: SLF001
    return redact(str(url.geturl())) if url else "?"


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
