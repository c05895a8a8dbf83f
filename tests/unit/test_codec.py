"""The codecs: every message round-trips; junk never escapes as anything but MalformedMessage."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import codec
from events.agent_events import AgentEvent
from events.base import Unknown
from events.commands import OperatorCommand
from events.errors import MalformedMessage
from events.job_events import JobEvent, JobQueued, JobSubmitted
from events.spec import JobSpec
from events.work import Heartbeat, WorkMessage
from tests import strategies as s


@given(s.events)
def test_every_event_round_trips(event: Any) -> None:
    """Encoding then decoding any event gives an equal event."""
    assert codec.decode_event(codec.encode(event)) == event


@given(s.commands)
def test_every_command_round_trips(command: Any) -> None:
    """Encoding then decoding any operator command gives an equal command."""
    assert codec.decode_command(codec.encode(command)) == command


@given(s.work_messages)
def test_every_work_message_round_trips(message: Any) -> None:
    """Dispatch and control messages round-trip."""
    assert codec.decode_work(codec.encode(message)) == message


@given(s.heartbeats)
def test_heartbeats_round_trip(beat: Any) -> None:
    """Heartbeats round-trip."""
    assert codec.decode_heartbeat(codec.encode(beat)) == beat


def test_every_event_type_has_a_version() -> None:
    """Every event class is listed with its current schema version."""
    names = {cls.__name__ for cls in (*get_args(JobEvent), *get_args(AgentEvent))}
    assert set(codec.CURRENT_VERSIONS) == names
    assert all(v >= 1 for v in codec.CURRENT_VERSIONS.values())


@given(st.binary(max_size=512))
def test_random_bytes_never_crash_the_event_decoder(data: bytes) -> None:
    """Any bytes decode to an event or Unknown, or raise MalformedMessage; nothing else."""
    _decodes_or_refuses(data)


@given(st.binary(max_size=512))
def test_random_bytes_never_crash_the_other_decoders(data: bytes) -> None:
    """Commands, work messages and heartbeats refuse junk with MalformedMessage only."""
    decoders = (
        (codec.decode_command, get_args(OperatorCommand)),
        (codec.decode_work, get_args(WorkMessage)),
        (codec.decode_heartbeat, (Heartbeat,)),
    )
    for decode, kinds in decoders:
        try:
            decoded = decode(data)
        except MalformedMessage:
            continue
        assert isinstance(decoded, kinds)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | s.finite,
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_random_json_never_crashes_the_event_decoder(value: object) -> None:
    """Well-formed JSON of any shape decodes or raises MalformedMessage."""
    _decodes_or_refuses(msgspec.json.encode(value))


EVENT_TYPES = (*get_args(JobEvent), *get_args(AgentEvent), Unknown)


def _decodes_or_refuses(data: bytes) -> None:
    try:
        decoded = codec.decode_event(data)
    except MalformedMessage as exc:
        refused: MalformedMessage | None = exc
    else:
        refused = None
        assert isinstance(decoded, EVENT_TYPES)
    assert refused is None or refused.data == data[:256]


def test_unknown_type_decodes_to_unknown() -> None:
    """An event type this code has never heard of becomes Unknown, keeping its bytes."""
    data = b'{"type":"JobTeleported","v":1,"at":1.0,"job":"x"}'
    decoded = codec.decode_event(data)
    assert decoded == Unknown(type="JobTeleported", v=1, raw=data)


def test_newer_version_decodes_to_unknown() -> None:
    """A known type at a version newer than this code's becomes Unknown, not a misread event."""
    data = codec.encode(JobQueued(job="j", at=1.0)).replace(b'"v":1', b'"v":2')
    decoded = codec.decode_event(data)
    assert isinstance(decoded, Unknown)
    assert (decoded.type, decoded.v) == ("JobQueued", 2)


def test_new_fields_from_newer_writers_are_ignored() -> None:
    """Fields added by a newer writer (same version) do not stop old code reading the event."""
    event = JobSubmitted(job="j", at=1.0, spec=JobSpec(scenario="1080p-h264"))
    data = codec.encode(event).replace(b'"preset":null', b'"preset":null,"watermark":"x"')
    data = data.replace(b'"by":""', b'"by":"","region":"eu"')
    assert codec.decode_event(data) == event


def test_old_version_is_upcast_through_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event written at v1 reads as v3 through two small upcasters, in order."""
    monkeypatch.setitem(codec.CURRENT_VERSIONS, "JobQueued", 3)

    def v1_to_v2(raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "reason": raw.get("why", "")}

    def v2_to_v3(raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "reason": raw["reason"].upper()}

    monkeypatch.setitem(codec.UPCASTERS, ("JobQueued", 1), v1_to_v2)
    monkeypatch.setitem(codec.UPCASTERS, ("JobQueued", 2), v2_to_v3)
    old = b'{"type":"JobQueued","v":1,"at":2.0,"job":"j","why":"retry due"}'
    decoded = codec.decode_event(old)
    assert isinstance(decoded, JobQueued)
    assert decoded.reason == "RETRY DUE"
    assert decoded.v == 3


def test_old_version_without_upcaster_is_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gap in the upcast chain is reported, not guessed at."""
    monkeypatch.setitem(codec.CURRENT_VERSIONS, "JobQueued", 2)
    with pytest.raises(MalformedMessage, match="no upcaster"):
        codec.decode_event(b'{"type":"JobQueued","v":1,"at":2.0,"job":"j"}')


def test_known_type_with_bad_fields_is_malformed() -> None:
    """A current-version event with a wrong field type is junk, and says which field."""
    with pytest.raises(MalformedMessage, match=r"\$\.at"):
        codec.decode_event(b'{"type":"JobQueued","v":1,"at":"soon","job":"j"}')


def test_events_are_readable_json() -> None:
    """The log holds plain JSON with the type tag first, for people debugging with nats sub."""
    data = codec.encode(JobQueued(job="j", at=1.5, reason="retry due"))
    assert data.startswith(b'{"type":"JobQueued","v":1,')
    assert b'"reason":"retry due"' in data
