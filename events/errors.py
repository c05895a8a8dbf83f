"""The one error tree of ffrtmp.

Every failure a person or a program can act on is an ``FfrtmpError`` with structured fields.
Lower-layer errors (NATS, DuckDB, the OS) are translated at the boundary that meets them, with
``raise ... from``, so callers match on our types only.

    FfrtmpError
    ├── InvalidSpec          a job spec or setting a person wrote is wrong
    ├── MalformedMessage     bytes on the wire that do not decode
    ├── ConcurrencyConflict  someone else appended to the job first
    ├── BatchFailed          an atomic batch was refused as a whole
    ├── StoreUnavailable     the event store cannot be reached
    ├── UnknownId            no id starts with the prefix typed
    └── AmbiguousId          several ids start with the prefix typed
"""

from __future__ import annotations

from events.redact import redact


class FfrtmpError(Exception):
    """Base of every error ffrtmp raises on purpose; the CLI renders it as one line."""


class InvalidSpec(FfrtmpError):
    """A value a person supplied (job spec, option, setting) is not acceptable."""

    def __init__(self, field: str, reason: str) -> None:
        """Name the field and say what is wrong with it and how to fix it."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class MalformedMessage(FfrtmpError):
    """Bytes that do not decode to any message of ours."""

    def __init__(self, reason: str, data: bytes = b"") -> None:
        """Keep the reason and the first bytes, for the dead-letter record."""
        super().__init__(f"malformed message: {reason}")
        self.reason = reason
        self.data = data[:256]


class ConcurrencyConflict(FfrtmpError):
    """An append expected a last sequence that is no longer the last: re-read and re-decide."""

    def __init__(self, subject: str, expected: int, actual: int | None = None) -> None:
        """Carry what was expected and, when the server said, what the last sequence really is."""
        seen = "unknown" if actual is None else str(actual)
        super().__init__(
            f"concurrent append on {subject}: expected last sequence {expected}, found {seen}"
        )
        self.subject = subject
        self.expected = expected
        self.actual = actual


class ForgedDuplicate(FfrtmpError):
    """The server took an append's ``Nats-Msg-Id`` as a duplicate of a message on another subject.

    JetStream dedups across the whole stream, so a writer that stores a message under an id
    another writer will use later makes that append look stored when it is not. The append is
    refused instead; the id stays taken for the dedup window.
    """

    def __init__(self, subject: str, msg_id: str, seq: int, stored_on: str) -> None:
        """Name the append, the id and where the message under that id really is."""
        super().__init__(
            f"append to {subject} not stored: its id {msg_id!r} is message {seq}'s, "
            f"stored on {stored_on or 'another subject'}"
        )
        self.subject = subject
        self.msg_id = msg_id
        self.seq = seq
        self.stored_on = stored_on


class BatchFailed(FfrtmpError):
    """An atomic batch was refused; none of its events were stored."""

    def __init__(self, reason: str) -> None:
        """Say why the server refused the batch."""
        super().__init__(f"atomic batch refused: {reason}")
        self.reason = reason


class StoreUnavailable(FfrtmpError):
    """The NATS server behind the event store cannot be reached or has no JetStream."""

    def __init__(
        self, url: str, hint: str = "start one with `ffrtmp server` or `ffrtmp up`"
    ) -> None:
        """Name the URL that failed (its password hidden) and what to do about it."""
        url = redact(url)
        super().__init__(f"cannot reach NATS JetStream at {url}: {hint}")
        self.url = url
        self.hint = hint


class UnknownId(FfrtmpError):
    """No job or agent has an id starting with what was typed."""

    def __init__(self, kind: str, prefix: str) -> None:
        """Name what was looked for."""
        super().__init__(f"no {kind} id starts with {prefix!r}; `ffrtmp {kind}s list` shows them")
        self.kind = kind
        self.prefix = prefix


class AmbiguousId(FfrtmpError):
    """More than one id starts with what was typed."""

    def __init__(self, kind: str, prefix: str, candidates: list[str]) -> None:
        """List the candidates, so the person can type one more character."""
        shown = ", ".join(candidates[:5]) + (" …" if len(candidates) > 5 else "")
        super().__init__(f"{kind} id prefix {prefix!r} matches {len(candidates)}: {shown}")
        self.kind = kind
        self.prefix = prefix
        self.candidates = candidates
