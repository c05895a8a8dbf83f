"""Mutated valid messages against every decoder and the scheduler's command handler.

Random bytes and random JSON are covered in ``test_codec``; here each valid message is damaged
the way real corruption and version drift damage it (a flipped byte, a cut, a field dropped or
retyped, the type renamed, the version raised) and the only outcomes allowed are a message of
the right kind, ``Unknown`` for events, or ``MalformedMessage``. Whatever decodes is then put to
the scheduler core, which must decide it without raising.
"""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from events import codec
from events.admit import read_event
from events.agent_events import AgentEvent
from events.base import SetAside, Unknown
from events.commands import AgentCommandBase, OperatorCommand
from events.errors import MalformedMessage
from events.job_events import JobEvent
from events.subjects import Subjects
from events.work import Heartbeat, WorkMessage
from ffrtmp.scheduler.core import SchedulerCore
from tests import strategies as s

EVENTS = (*get_args(JobEvent), *get_args(AgentEvent), Unknown)
SUBJECTS = Subjects("ffrtmp")
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | s.finite,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=5,
)


@st.composite
def mutated(draw: st.DrawFn, messages: st.SearchStrategy[Any]) -> bytes:
    """A valid message's bytes, damaged once."""
    data = codec.encode(draw(messages))
    raw: dict[str, Any] = msgspec.json.decode(data)
    how = draw(st.sampled_from(["flip", "cut", "drop", "retype", "rename", "version", "add"]))
    if how == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
    if how == "cut":
        return data[: draw(st.integers(0, len(data) - 1))]
    key = draw(st.sampled_from(sorted(raw)))
    if how == "drop":
        del raw[key]
    elif how == "retype":
        raw[key] = draw(JSON_VALUES)
    elif how == "rename":
        raw["type"] = draw(st.sampled_from([raw["type"].lower(), "", "JobTeleported", 7]))
    elif how == "version":
        raw["v"] = draw(st.sampled_from([0, -1, 2, 99, 2**70, "1", None]))
    else:
        raw[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    return msgspec.json.encode(raw)


def _refuses_or(decode: Any, data: bytes, kinds: tuple[type, ...]) -> Any:
    try:
        decoded = decode(data)
    except MalformedMessage as exc:
        refused: MalformedMessage | None = exc
    else:
        refused = None
        assert isinstance(decoded, kinds)
    if refused is not None:
        assert refused.data == data[:256]
        return None
    return decoded


@settings(max_examples=300)
@given(mutated(s.events))
def test_a_damaged_event_decodes_or_is_unknown_or_is_refused(data: bytes) -> None:
    """A damaged event is an event, an Unknown (newer type or version) or MalformedMessage."""
    _refuses_or(codec.decode_event, data, EVENTS)


@settings(max_examples=300)
@given(mutated(s.work_messages))
def test_a_damaged_work_message_is_refused_with_malformed_only(data: bytes) -> None:
    """Dispatches and controls: decoded whole or refused, never half-read or crashed."""
    _refuses_or(codec.decode_work, data, get_args(WorkMessage))


@settings(max_examples=300)
@given(mutated(s.heartbeats))
def test_a_damaged_heartbeat_is_refused_with_malformed_only(data: bytes) -> None:
    """Heartbeats: decoded whole or refused."""
    _refuses_or(codec.decode_heartbeat, data, (Heartbeat,))


@settings(max_examples=300, deadline=None)
@given(mutated(s.commands), s.finite)
def test_a_damaged_command_is_refused_or_decided_without_raising(data: bytes, now: float) -> None:
    """What the scheduler's intake decodes, its core decides: events or a refusal, no exception."""
    command = _refuses_or(codec.decode_command, data, get_args(OperatorCommand))
    if command is not None:
        decision = SchedulerCore().on_command(command, now)
        assert isinstance(decision.events, tuple)


@settings(max_examples=200, deadline=None)
@given(s.commands, s.finite)
def test_any_valid_command_is_decided_without_raising(command: Any, now: float) -> None:
    """Any command the codec accepts, with any values in it, is decided without an exception."""
    core = SchedulerCore()
    first = core.on_command(command, now)
    assert isinstance(first.events, tuple)


@settings(max_examples=300, deadline=None)
@given(mutated(s.commands), s.finite)
def test_a_damaged_command_at_the_schedulers_door_is_set_aside_or_names_its_subjects(
    data: bytes, now: float
) -> None:
    """``accept_command`` refuses with MalformedMessage only; what it accepts is decided.

    An accepted command's ids name valid subjects, so an id the server would refuse never
    reaches a publish.
    """
    command = _refuses_or(codec.accept_command, data, get_args(OperatorCommand))
    if command is None:
        return
    if isinstance(command, AgentCommandBase):
        SUBJECTS.agent_event(command.agent)
    else:
        SUBJECTS.job_event(command.job, "sched")
    assert isinstance(SchedulerCore().on_command(command, now).events, tuple)


@settings(max_examples=300)
@given(mutated(s.events), st.sampled_from(["sched", "a1", "a.b", "", "x" * 200]))
def test_a_damaged_event_on_any_writers_subject_reads_as_something(
    data: bytes, writer: str
) -> None:
    """Through the one door a damaged event is an event, Unknown or SetAside; never raised."""
    event = read_event(f"ffrtmp.evt.job.j.{writer}", data)
    assert isinstance(event, (*EVENTS, SetAside))
