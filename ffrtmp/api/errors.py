"""Every error of the API as one JSON shape with a message a person can act on.

``{"error": {"status": 422, "message": "scenario: unknown scenario 'x'; …", "field": "scenario"}}``
— ``field`` only when one field of the request is wrong. Our errors (``FfrtmpError``) map to a
status by kind; Litestar's own (a body that does not decode, a missing route) keep theirs,
except a body that fails validation, which is 422 like every other wrong field.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException

from agent.logs import LogNotFound
from events.errors import AmbiguousId, FfrtmpError, InvalidSpec, StoreUnavailable, UnknownId
from ffrtmp.client.jobs import NotRunYet
from projections.query import QueryFailed, QueryRefused
from projections.service import NoProjector

log = logging.getLogger(__name__)

_AT: Final = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
_UNKNOWN: Final = re.compile(r"unknown field `([^`]*)`")
_MISSING: Final = re.compile(r"missing required field `([^`]*)`")
_PATH_END: Final = re.compile(r"[\[:.]")


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What went wrong."""

    status: int
    message: str
    field: str = ""


class ErrorDocument(msgspec.Struct, frozen=True):
    """The one shape of every error response."""

    error: ErrorBody


class NotFound(FfrtmpError):
    """No job or node has this whole id (404)."""

    def __init__(self, kind: str, ident: str) -> None:
        """Name what was looked for."""
        super().__init__(f"no {kind} has the id {ident!r}")


class Refused(FfrtmpError):
    """The scheduler refused the command (409): the job is not in a state that allows it."""


def top_field(path: str) -> str:
    """The request's field that a path names: ``labels`` for ``labels[...]`` or ``labels: k``."""
    return _PATH_END.split(path, maxsplit=1)[0].strip()


def error_response(status: int, message: str, field: str = "") -> Response[ErrorDocument]:
    """An error in the API's one shape; ``field`` is the request's field, however deep the fault."""
    body = ErrorDocument(ErrorBody(status=status, message=message, field=top_field(field)))
    return Response(body, status_code=status, media_type=MediaType.JSON)


def _status_of(exc: FfrtmpError) -> int:
    match exc:
        case InvalidSpec() | QueryRefused() | QueryFailed():
            return 422
        case UnknownId() | NotFound() | LogNotFound() | NotRunYet():
            return 404
        case Refused():
            return 409
        case StoreUnavailable() | NoProjector():
            return 503
        case AmbiguousId():
            return 400
    return 400


def ours(_: Request[Any, Any, Any], exc: FfrtmpError) -> Response[ErrorDocument]:
    """An ``FfrtmpError`` as its status and its one line."""
    field = exc.field if isinstance(exc, InvalidSpec) else ""
    if isinstance(exc, QueryRefused | QueryFailed):
        field = "sql"
    return error_response(_status_of(exc), str(exc), field)


def invalid_body(_: Request[Any, Any, Any], exc: ValidationException) -> Response[ErrorDocument]:
    """A body or parameter Litestar could not decode: 422 naming the field, when one is named."""
    details = exc.extra if isinstance(exc.extra, list) else []
    first = details[0] if details and isinstance(details[0], dict) else {}
    message = str(first.get("message") or exc.detail)
    named = (pattern.search(message) for pattern in (_AT, _UNKNOWN, _MISSING))
    field = next((found.group(1) for found in named if found), "")
    key = str(first.get("key") or "")
    if not field and key != "data":  # "data" is the body as a whole, not a field of it
        field = key
    return error_response(422, f"{field}: {message}" if field else message, field)


def http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[ErrorDocument]:
    """Litestar's own errors (401, 403, 404, 405, 413 …) in the one shape."""
    return error_response(exc.status_code, str(exc.detail))


def bug(request: Request[Any, Any, Any], exc: Exception) -> Response[ErrorDocument]:
    """Anything else is a bug: logged with its traceback, answered 500 without internals."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error (logged by the API)")
