"""Bytes to messages and back, built once, tolerant of the future and strict about junk.

Events decode through their tagged union. A type this code does not know, or a version newer
than it knows, becomes ``Unknown`` (folded as a counted no-op), so old code never crashes on new
events. An older version is upcast on read by a chain of small functions over the raw dict,
never rewritten in the log. Anything else that does not decode raises ``MalformedMessage``:
that is the only exception a decoder here raises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeVar, cast, get_args

import msgspec

from events.agent_events import AgentEvent
from events.base import Message, SetAside, Unknown
from events.commands import OperatorCommand, SubmitJob, check_command
from events.errors import InvalidSpec, MalformedMessage
from events.job_events import JobEvent
from events.spec import SPEC_FIELDS
from events.work import Heartbeat, WorkMessage

AnyEvent = JobEvent | AgentEvent
Decoded = AnyEvent | Unknown | SetAside
"""What a reader gets for a stored message (``events.admit.read_event``)."""
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

MAX_MESSAGE_BYTES: Final = 1 << 20  # the server's max_payload in nats.conf

_ENCODER: Final = msgspec.json.Encoder()
_EVENT_DECODER: Final[msgspec.json.Decoder[AnyEvent]] = msgspec.json.Decoder(AnyEvent)
_COMMAND_DECODER: Final[msgspec.json.Decoder[OperatorCommand]] = msgspec.json.Decoder(
    OperatorCommand
)
_WORK_DECODER: Final[msgspec.json.Decoder[WorkMessage]] = msgspec.json.Decoder(WorkMessage)
_HEARTBEAT_DECODER: Final = msgspec.json.Decoder(Heartbeat)


class _Envelope(msgspec.Struct):
    """What every message has, read when the full decode fails."""

    type: str
    v: int = 1


_ENVELOPE_DECODER: Final = msgspec.json.Decoder(_Envelope)
# msgspec raises UnicodeDecodeError, not DecodeError, for invalid UTF-8 in a tag's value, and
# RecursionError for JSON nested about a thousand deep, even inside a field it skips.
_UNDECODABLE: Final = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)


def _current_versions() -> dict[str, int]:
    versions: dict[str, int] = {}
    for cls in get_args(AnyEvent):
        (v_field,) = (f for f in msgspec.structs.fields(cls) if f.name == "v")
        versions[cls.__name__] = int(v_field.default)
    return versions


CURRENT_VERSIONS: Final[dict[str, int]] = _current_versions()
MESSAGE_VERSION: Final = 1
"""The version of every command, work message and heartbeat this code reads; a newer one is
set aside, never read as this one."""

# (type, version) -> function turning that version's dict into the next version's dict.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def encode(message: Message) -> bytes:
    """JSON bytes of any message: readable in the log, ``nats sub`` and ``ffrtmp events``."""
    return _ENCODER.encode(message)


def decode_event(data: bytes) -> AnyEvent | Unknown:
    """An event from the log, ``Unknown`` for a newer type or version, upcast if older.

    Junk raises ``MalformedMessage``: readers of the log go through ``events.admit`` instead.
    """
    try:
        event = _EVENT_DECODER.decode(data)
    except _UNDECODABLE:
        return _decode_slow(data)
    current = CURRENT_VERSIONS[type(event).__name__]
    if event.v == current:
        return event
    return _decode_slow(data)


def _decode_slow(data: bytes) -> AnyEvent | Unknown:
    """The envelope first: tell an unknown type or version from an old one and from junk."""
    envelope = _envelope(data)
    current = CURRENT_VERSIONS.get(envelope.type)
    if current is None or envelope.v > current:
        return Unknown(type=envelope.type, v=envelope.v, raw=bytes(data))
    if envelope.v == current:
        raise _malformed_event(data)
    try:
        raw = msgspec.json.decode(data)
    except _UNDECODABLE as exc:
        raise MalformedMessage(str(exc), data) from exc
    return _upcast(raw, envelope.type, envelope.v, current, data)


def _envelope(data: bytes) -> _Envelope:
    try:
        return _ENVELOPE_DECODER.decode(data)
    except _UNDECODABLE as exc:
        raise MalformedMessage(f"no type and version: {exc}", data) from exc


def _malformed_event(data: bytes) -> MalformedMessage:
    try:
        _EVENT_DECODER.decode(data)
    except _UNDECODABLE as exc:
        return MalformedMessage(str(exc), data)
    return MalformedMessage("undecodable event", data)  # pragma: no cover -- decoded above


def _upcast(
    raw: dict[str, Any], kind: str, version: int, current: int, data: bytes
) -> AnyEvent | Unknown:
    while version < current:
        step = UPCASTERS.get((kind, version))
        if step is None:
            raise MalformedMessage(f"{kind} v{version} has no upcaster to v{version + 1}", data)
        raw = step(raw)
        version += 1
        raw["v"] = version
    try:
        return cast("AnyEvent", msgspec.convert(raw, AnyEvent))
    except msgspec.ValidationError as exc:
        raise MalformedMessage(f"{kind} upcast to v{current} is invalid: {exc}", data) from exc


M = TypeVar("M", bound=Message)


def _strict(decoder: msgspec.json.Decoder[M], data: bytes) -> M:
    try:
        message = decoder.decode(data)
    except _UNDECODABLE as exc:
        raise MalformedMessage(str(exc), data) from exc
    if message.v != MESSAGE_VERSION:
        name = type(message).__name__
        raise MalformedMessage(f"{name} v{message.v}: this code reads v{MESSAGE_VERSION}", data)
    return message


def accept_command(data: bytes) -> OperatorCommand:
    """An operator command as every door accepts it, else ``MalformedMessage`` naming why.

    Decoded, its ids and strings in bounds (``events.commands.check_command``), a spec with no
    field this code does not know: a raw NATS client meets exactly the rules the CLI applies.
    """
    command = decode_command(data)
    try:
        check_command(command)
        if isinstance(command, SubmitJob):
            _known_spec_fields(data)
    except InvalidSpec as exc:
        raise MalformedMessage(str(exc), data) from exc
    return command


class _SpecFields(msgspec.Struct):
    spec: dict[str, msgspec.Raw] = {}


def _known_spec_fields(data: bytes) -> None:
    try:
        fields = msgspec.json.decode(data, type=_SpecFields).spec
    except _UNDECODABLE as exc:  # the command decoded, but not every byte it skipped does
        raise MalformedMessage(str(exc), data) from exc
    unknown = sorted(set(fields) - SPEC_FIELDS)
    if unknown:
        raise InvalidSpec(f"spec.{unknown[0][:64]}", "unknown field")


def decode_command(data: bytes) -> OperatorCommand:
    """An operator command; junk and unknown commands raise ``MalformedMessage``."""
    return _strict(_COMMAND_DECODER, data)


def decode_work(data: bytes) -> WorkMessage:
    """A dispatch or a control message."""
    return _strict(_WORK_DECODER, data)


def decode_heartbeat(data: bytes) -> Heartbeat:
    """An agent's heartbeat."""
    return _strict(_HEARTBEAT_DECODER, data)
