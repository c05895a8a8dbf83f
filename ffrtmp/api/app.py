"""The API's application: routes, the auth guard, errors, the farm connection, the console.

``create_app`` is the whole of it; ``ffrtmp api run`` serves it with uvicorn. One connection to
the farm is opened at start and shared by every request (nats-py multiplexes); the API keeps no
other state, so instances behind a load balancer answer alike.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import msgspec
from litestar import Controller, Litestar, MediaType, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.static_files import create_static_files_router
from litestar.types import Guard

from events.commands import ClearAgent, QuarantineAgent
from events.errors import FfrtmpError
from events.ids import check_id
from ffrtmp.api import errors
from ffrtmp.api.auth import Role, Tokens
from ffrtmp.api.docs import render
from ffrtmp.api.errors import NotFound
from ffrtmp.api.jobs import JobsController
from ffrtmp.api.state import CALLER_KEY, CONN_KEY, caller_of, conn_of
from ffrtmp.client.conn import Where, connect
from ffrtmp.client.nodes import NodeRow, drain_reason, node_list, steer_node
from ffrtmp.client.summary import Summary, farm_summary
from projections.service import ask

VERSION: Final = "v1"
CONSOLE: Final = Path(__file__).with_name("console")
MAX_BODY_BYTES: Final = 64 * 1024
"""A request body larger than any job spec or query needs (413 beyond)."""


class ApiSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How the API runs."""

    tokens: Tokens | None = None
    console: bool = True


class QuarantineBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Why a node is quarantined, for the record."""

    reason: str = "quarantined by an operator"


class NodeMessage(msgspec.Struct, frozen=True):
    """What became of a node command, in one line."""

    message: str


class SqlBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A read-only query for the projector, and at most how many rows to return."""

    sql: str
    limit: int = 100


class SqlAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """A query's rows with their columns, and the log sequence they were read at."""

    columns: list[str]
    rows: list[list[Any]]
    checkpoint: int
    truncated: bool


class Health(msgspec.Struct, frozen=True):
    """Whether the API is up (``/healthz``) or can serve the farm (``/readyz``)."""

    status: str
    detail: str = ""


def _guard(tokens: Tokens | None) -> Guard:
    """The guard of every API route: a known token, with a role that covers the route's."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        needed = handler.opt.get("role")
        if needed is None:
            return
        caller = (tokens or Tokens([])).caller(connection.headers.get("authorization"))
        if caller is None:
            raise NotAuthorizedException(
                "a valid bearer token is required (Authorization: Bearer …)"
            )
        if not caller.may(needed):
            raise PermissionDeniedException(f"role {caller.role} may not do this; {needed} may")
        connection.scope["state"][CALLER_KEY] = caller

    return guard


class NodesController(Controller):
    """Nodes (agents): list, describe, drain, quarantine, clear."""

    path = "/api/v1/nodes"
    tags = ["nodes"]  # noqa: RUF012 -- Litestar's class attribute

    @get("/", opt={"role": Role.VIEWER})
    async def listing(self, request: Request[Any, Any, Any]) -> list[NodeRow]:
        """Every node the log knows, with its last heartbeat."""
        return await node_list(conn_of(request))

    @get("/{node:str}", opt={"role": Role.VIEWER})
    async def describe(self, request: Request[Any, Any, Any], node: str) -> NodeRow:
        """One node."""
        for row in await node_list(conn_of(request)):
            if row.id == node:
                return row
        raise NotFound("node", node)

    @post("/{node:str}/drain", opt={"role": Role.OPERATOR}, status_code=200)
    async def drain(self, request: Request[Any, Any, Any], node: str) -> NodeMessage:
        """No new work for the node; its running jobs finish."""
        by = caller_of(request).name
        reason = drain_reason(by)
        return NodeMessage(
            await steer_node(conn_of(request), _whole(node), QuarantineAgent, reason, by=by)
        )

    @post("/{node:str}/quarantine", opt={"role": Role.OPERATOR}, status_code=200)
    async def quarantine(
        self, request: Request[Any, Any, Any], node: str, data: QuarantineBody | None = None
    ) -> NodeMessage:
        """No new placements on the node until it is cleared."""
        reason = (data or QuarantineBody()).reason
        by = caller_of(request).name
        return NodeMessage(
            await steer_node(conn_of(request), _whole(node), QuarantineAgent, reason, by=by)
        )

    @post("/{node:str}/clear", opt={"role": Role.OPERATOR}, status_code=200)
    async def clear(self, request: Request[Any, Any, Any], node: str) -> NodeMessage:
        """Undo a drain or a quarantine: the node takes new work again."""
        by = caller_of(request).name
        return NodeMessage(await steer_node(conn_of(request), _whole(node), ClearAgent, "", by=by))


def _whole(node: str) -> str:
    """A node id as a path gives it: whole, and a safe token (prefixes are the CLI's)."""
    return check_id(node, "node")


@post("/api/v1/sql", opt={"role": Role.VIEWER}, status_code=200, tags=["sql"])
async def sql(request: Request[Any, Any, Any], data: SqlBody) -> SqlAnswer:
    """A read-only query through the projector's SQL service, with its limits."""
    reply = await ask(conn_of(request).nc, conn_of(request).subjects, data.sql, limit=data.limit)
    if reply.result is None:
        raise FfrtmpError(f"the projector answered without rows: {reply.error or reply.kind}")
    result = reply.result
    return SqlAnswer(
        columns=result.columns,
        rows=result.rows,
        checkpoint=reply.checkpoint,
        truncated=result.truncated,
    )


@get("/api/v1/summary", opt={"role": Role.VIEWER}, tags=["summary"])
async def summary(request: Request[Any, Any, Any]) -> Summary:
    """Jobs by status, what waits in each queue, the last hour's throughput, nodes online."""
    return await farm_summary(conn_of(request), time.time())


@get("/healthz", tags=["health"])
async def healthz() -> Health:
    """The process answers."""
    return Health("ok")


@get("/readyz", tags=["health"])
async def readyz(request: Request[Any, Any, Any]) -> Response[Health]:
    """The farm's NATS is connected: requests can be served (503 otherwise)."""
    nc = conn_of(request).nc
    if nc.is_connected:
        return Response(Health("ready"))
    return Response(Health("unready", "not connected to NATS; reconnecting"), status_code=503)


@get("/openapi.json", include_in_schema=False, media_type=MediaType.JSON)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenAPI document, generated from the same msgspec types the log uses."""
    return request.app.openapi_schema.to_schema()


@get("/api/docs", include_in_schema=False, media_type=MediaType.HTML)
async def docs_page(request: Request[Any, Any, Any]) -> str:
    """The API's routes and schemas as a page that loads nothing from elsewhere."""
    return render(request.app.openapi_schema.to_schema())


def create_app(where: Where, settings: ApiSettings) -> Litestar:
    """The API for the farm at ``where``."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with connect(where) as conn:
            app.state[CONN_KEY] = conn
            yield

    handlers: list[Any] = [
        JobsController,
        NodesController,
        sql,
        summary,
        healthz,
        readyz,
        openapi_json,
        docs_page,
    ]
    if settings.console and CONSOLE.is_dir():
        handlers.append(
            create_static_files_router(
                path="/", directories=[CONSOLE], html_mode=True, include_in_schema=False
            )
        )
    return Litestar(
        route_handlers=handlers,
        lifespan=[lifespan],
        guards=[_guard(settings.tokens)],
        request_max_body_size=MAX_BODY_BYTES,
        exception_handlers={
            FfrtmpError: errors.ours,
            ValidationException: errors.invalid_body,
            HTTPException: errors.http_error,
            Exception: errors.bug,
        },
        openapi_config=OpenAPIConfig(
            title="ffrtmp",
            version=VERSION,
            path="/api/schema",
            description="The farm over HTTP: a thin face over the log (README: HTTP API).",
        ),
        debug=False,
    )
