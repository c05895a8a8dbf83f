"""What a request handler reads from the app and the request: the farm's connection, the caller."""

from __future__ import annotations

from typing import Any, cast

from litestar import Request

from ffrtmp.api.auth import Caller
from ffrtmp.client.conn import Conn

CONN_KEY = "conn"
CALLER_KEY = "caller"


def conn_of(request: Request[Any, Any, Any]) -> Conn:
    """The app's one connection to the farm (opened by the lifespan)."""
    return cast("Conn", request.app.state[CONN_KEY])


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    """Who sent the request, as the auth guard found it."""
    return cast("Caller", request.scope["state"][CALLER_KEY])
