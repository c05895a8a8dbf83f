"""Is the farm there? Conditions ``ffrtmp up`` waits on and ``ffrtmp demo`` checks first.

Each probe answers yes or no, never raises for "not yet": a scheduler holds the lease, a
projector answers SQL; whether an HTTP endpoint answers is ``ffrtmp.client.probe.http_ok``.
"""

from __future__ import annotations

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
