"""Is the farm there? Conditions ``ffrtmp up`` waits on and ``ffrtmp demo`` checks first.

Each probe answers yes or no, never raises for "not yet": a scheduler holds the lease, a
projector answers SQL, an HTTP endpoint answers 200.
"""

from __future__ import annotations

import urllib.request

from events.errors import FfrtmpError
from ffrtmp.client.conn import Conn
from projections.service import ask


async def projector_answers(conn: Conn) -> bool:
    """Whether a projector answers a query on the SQL endpoint."""
    try:
        await ask(conn.nc, conn.subjects, "SELECT 1", timeout_s=1.0)
    except FfrtmpError:
        return False
    return True


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 200 within a second (blocking: call it in a thread)."""
    try:
        with urllib.request.urlopen(url, timeout=1.0) as reply:  # noqa: S310 -- our own http URL
            return int(reply.status) == 200
    except OSError:
        return False
