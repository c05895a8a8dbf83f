"""Base classes of the message vocabulary, configured once.

Every message is a frozen, keyword-only msgspec Struct tagged by its class name in a ``type``
field, with a schema version ``v``. A new field always gets a default; a field is never
reordered, retyped or reused; a change of meaning is a new version with an upcaster in
``events.codec``.
"""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """Anything written to a stream: tagged by class name, versioned."""

    v: int = 1


class Event(Message, frozen=True, kw_only=True):
    """A fact, past tense, never edited. ``at`` is the writer's clock, Unix seconds."""

    at: float
    cause: str = ""  # what led to it: a command id, ``seq:<n>`` of an event, or a timer name


class JobEventBase(Event, frozen=True, kw_only=True):
    """A fact about one job, stored on ``<prefix>.evt.job.<job>.<writer>``."""

    job: str


class AgentEventBase(Event, frozen=True, kw_only=True):
    """A fact about one agent, stored on ``<prefix>.evt.agent.<agent>``."""

    agent: str


class Unknown(msgspec.Struct, frozen=True):
    """A message this code cannot read: a newer type or version. Folds as a counted no-op."""

    type: str
    v: int
    raw: bytes


class SetAside(msgspec.Struct, frozen=True):
    """A stored message no reader applies: it does not decode, or its writer may not write it.

    Folds as a no-op like ``Unknown``, but it is a fault, not the future: every reader counts
    it, long-running ones log it once, and ``ffrtmp check`` and the projection list it by
    sequence. ``subject`` is where it was stored.
    """

    reason: str
    raw: bytes
    subject: str = ""
    kind: str = "malformed"  # or "forged": it decodes, but its writer may not write it
