"""Whether an HTTP endpoint of a farm answers 200: the API's ``/readyz``, the exporter's page.

One yes-or-no probe for everything that waits on a farm being ready (``ffrtmp up``, the API
bench, the tests that start ``up``): "not yet" is False, never an error. Blocking, so an event
loop calls it in a thread.
"""

from __future__ import annotations

import urllib.request


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    """Whether ``url`` answers 200 within ``timeout_s``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 -- our own http URL
            return int(reply.status) == 200
    except OSError:
        return False
