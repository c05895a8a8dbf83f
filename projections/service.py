"""The projector's face on NATS: read-only SQL as a NATS micro service, and its client.

A projector registers the service ``ffrtmp-projector`` (``nats.micro``, so ``$SRV.PING``,
``$SRV.INFO`` and ``$SRV.STATS`` find and count it; ``nats micro ls`` lists it) with one
endpoint, ``sql``, on ``<prefix>.api.sql`` in the queue group ``ffrtmp-projector``: several
projectors share the requests, each answering from its own copy.

Request (JSON): ``{"sql": "SELECT …", "params": [...], "limit": 10000}``; ``params`` fill
``?`` placeholders, ``limit`` caps the rows (at most ``MAX_ROW_LIMIT``). Reply (JSON),
``SqlReply``: ``result`` (``columns``, ``types``, ``rows``, ``truncated``, ``limit``) and the
``checkpoint`` it was answered at, or ``error`` and ``kind`` (``refused``: not a read-only
query, ``error`` says why; ``failed``: DuckDB rejected it; ``bad_request``: not a request).
Errors also carry the micro service's error headers, so ``$SRV.STATS`` counts them. A reply
never exceeds
``MAX_REPLY_BYTES`` (under the server's 1 MiB ``max_payload``): rows past that are cut and
``truncated`` is set.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Final

import msgspec
from nats import micro
from nats.aio.client import Client as NatsClient
from nats.errors import NoRespondersError
from nats.micro.request import Request
from nats.micro.service import Service

from events.errors import FfrtmpError, StoreUnavailable
from events.natserrors import failing_as, url_of
from events.subjects import Subjects
from projections.query import DEFAULT_ROW_LIMIT, QueryFailed, QueryRefused, QueryResult
from projections.runner import Projector
from projections.schema import VERSION

log = logging.getLogger(__name__)

SERVICE_NAME: Final = "ffrtmp-projector"
QUEUE_GROUP: Final = "ffrtmp-projector"
MAX_ROW_LIMIT: Final = 100_000
MAX_REPLY_BYTES: Final = 900_000
START_HINT: Final = (
    "start one with `ffrtmp projector run --db PATH` (or `ffrtmp up`), or use --local"
)


def sql_subject(subjects: Subjects) -> str:
    """Where the SQL endpoint listens under a prefix."""
    return f"{subjects.prefix}.api.sql"


class NoProjector(FfrtmpError):
    """No projector serves the prefix (NATS had no responder): the caller may fold the log."""


class SqlRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One question."""

    sql: str
    params: list[Any] = []
    limit: int = DEFAULT_ROW_LIMIT


class SqlReply(msgspec.Struct, frozen=True, kw_only=True):
    """An answer, or why there is none, as a client reads either."""

    result: QueryResult | None = None
    checkpoint: int = 0
    error: str = ""
    kind: str = ""


class SqlAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """What a projector sends for an answer: no error keys."""

    result: QueryResult
    checkpoint: int


class SqlError(msgspec.Struct, frozen=True, kw_only=True):
    """What a projector sends for a refusal or a failure: no result keys."""

    error: str
    kind: str


_REQUEST: Final = msgspec.json.Decoder(SqlRequest)
_REPLY: Final = msgspec.json.Decoder(SqlReply)


def _fallback(value: object) -> object:
    """Values msgspec has no JSON form for (intervals' odd cousins, enums of extensions)."""
    return str(value)


_ENCODER: Final = msgspec.json.Encoder(enc_hook=_fallback)


async def serve(nc: NatsClient, projector: Projector) -> Service:
    """Register the SQL service for ``projector`` on ``nc``; stop it with ``await svc.stop()``."""
    service = await micro.add_service(
        nc,
        name=SERVICE_NAME,
        version=f"{VERSION}.0.0",
        description="read-only SQL over ffrtmp's DuckDB projections",
        metadata={"prefix": projector.subjects.prefix, "db": projector.db},
        queue_group=QUEUE_GROUP,
    )

    async def handle(request: Request) -> None:
        await _answer(projector, request)

    await service.add_endpoint(name="sql", subject=sql_subject(projector.subjects), handler=handle)
    return service


async def _answer(projector: Projector, request: Request) -> None:
    try:
        asked = _REQUEST.decode(request.data)
    except (msgspec.DecodeError, RecursionError) as exc:  # RecursionError: nested ~1,000 deep
        await _error(request, "400", "bad_request", f"not an SQL request: {exc}")
        return
    limit = max(0, min(asked.limit, MAX_ROW_LIMIT))
    try:
        checkpoint = projector.checkpoint()
        result = await asyncio.to_thread(projector.query, asked.sql, asked.params, limit=limit)
    except QueryRefused as exc:
        await _error(request, "403", "refused", exc.reason)
        return
    except QueryFailed as exc:
        await _error(request, "422", "failed", str(exc))
        return
    await request.respond(fit(SqlAnswer(result=result, checkpoint=checkpoint)))


async def _error(request: Request, code: str, kind: str, message: str) -> None:
    log.debug("sql %s: %s", kind, message)
    body = _ENCODER.encode(SqlError(error=message, kind=kind))
    await request.respond_error(code, message, body)


def fit(reply: SqlAnswer) -> bytes:
    """The reply's JSON, rows cut (and ``truncated`` set) until it fits ``MAX_REPLY_BYTES``."""
    data = _ENCODER.encode(reply)
    result = reply.result
    while len(data) > MAX_REPLY_BYTES and result.rows:
        keep = max(0, int(len(result.rows) * MAX_REPLY_BYTES / len(data) * 0.9))
        result = msgspec.structs.replace(result, rows=result.rows[:keep], truncated=True)
        data = _ENCODER.encode(msgspec.structs.replace(reply, result=result))
    return data


async def ask(
    nc: NatsClient,
    subjects: Subjects,
    sql: str,
    params: Sequence[object] = (),
    *,
    limit: int = DEFAULT_ROW_LIMIT,
    timeout_s: float = 30.0,
) -> SqlReply:
    """Ask a projector; its errors come back as ``QueryRefused``/``QueryFailed``."""
    subject = sql_subject(subjects)
    payload = _ENCODER.encode(SqlRequest(sql=sql, params=list(params), limit=limit))
    with failing_as(lambda exc: StoreUnavailable(url_of(nc), f"{type(exc).__name__}: {exc}")):
        try:
            msg = await nc.request(subject, payload, timeout=timeout_s)
        except NoRespondersError as exc:  # acted on: the callers fold the log here instead
            raise NoProjector(f"no projector answers on {subject}: {START_HINT}") from exc
        except TimeoutError as exc:  # acted on: a projector is there but busy, not NATS down
            raise FfrtmpError(f"no projector answered on {subject} in {timeout_s} s") from exc
    reply = _REPLY.decode(msg.data)
    if reply.kind == "refused":
        raise QueryRefused(reply.error)
    if reply.error:
        raise QueryFailed(reply.error)
    return reply
