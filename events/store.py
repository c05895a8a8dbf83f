"""The event store's contract, and its in-memory twin.

``EventStore`` is the narrow door through which everything reads and writes the log. The
JetStream implementation (``events.jetstream``) is the one that ships; ``MemoryEventStore``
follows the same contract (one contract suite runs against both) so pure tests stay fast.

Contract:
- ``append`` stores one event on a subject. ``expected`` (a stream sequence, 0 for "nothing
  yet") is checked against the last sequence on ``expected_subject`` (a wildcard such as
  ``ffrtmp.evt.job.<job>.>``); a mismatch raises ``ConcurrencyConflict`` and stores nothing.
  ``msg_id`` dedups: a second append with the same id returns the first one's sequence.
- ``append_many`` pipelines independent appends; each result is a sequence or the error that
  append alone would have raised, in order.
- ``append_batch`` stores all of its events or none (``BatchFailed``).
- ``load`` returns one job's events and the sequence to expect for its next append.
- ``replay`` yields ``(seq, event)`` from ``from_seq`` to the end as of the call; ``follow``
  keeps yielding as new events arrive.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import msgspec

from events.admit import read_event
from events.base import Event
from events.codec import Decoded, encode
from events.errors import BatchFailed, ConcurrencyConflict, ForgedDuplicate


class Append(msgspec.Struct, frozen=True, kw_only=True):
    """One event to store, with its dedup id and optional concurrency check."""

    subject: str
    event: Event
    msg_id: str
    expected: int | None = None
    expected_subject: str | None = None


class Loaded(msgspec.Struct, frozen=True, kw_only=True):
    """A job's history and the sequence its next append must expect."""

    events: list[tuple[int, Decoded]]
    last_seq: int


class EventStore(Protocol):
    """What the rest of ffrtmp needs from the log."""

    async def append(self, item: Append) -> int:
        """Store one event; return its stream sequence."""
        ...

    async def append_many(self, items: Sequence[Append]) -> list[int | Exception]:
        """Store independent events, pipelined; per-item sequence or error, in order."""
        ...

    async def append_batch(self, items: Sequence[Append]) -> list[int]:
        """Store all of ``items`` atomically, or none."""
        ...

    async def load(self, job: str) -> Loaded:
        """One job's events, in order, and the last sequence on its subjects (0 if none)."""
        ...

    def replay(self, from_seq: int = 1) -> AsyncIterator[tuple[int, Decoded]]:
        """Every event from ``from_seq`` up to the end as of the call."""
        ...

    def follow(self, from_seq: int = 1) -> AsyncIterator[tuple[int, Decoded]]:
        """Every event from ``from_seq`` on, waiting for new ones; never ends by itself."""
        ...

    async def last_seq(self) -> int:
        """The stream's last sequence (0 when empty)."""
        ...


def _matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a final ``>`` is one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, part in enumerate(want):
        if part == ">":
            return len(have) > i
        if i >= len(have) or (part not in {"*", have[i]}):
            return False
    return len(want) == len(have)


class MemoryEventStore:
    """The in-memory twin of the JetStream store: same contract, no server, no durability."""

    def __init__(self) -> None:
        """Start with an empty log."""
        self._log: list[tuple[str, bytes]] = []  # (subject, encoded event); seq = index + 1
        self._ids: dict[str, int] = {}
        self._grew = asyncio.Condition()

    def _last_on(self, pattern: str) -> int:
        for index in range(len(self._log) - 1, -1, -1):
            if _matches(pattern, self._log[index][0]):
                return index + 1
        return 0

    def _check(self, item: Append) -> None:
        if item.expected is None:
            return
        pattern = item.expected_subject or item.subject
        actual = self._last_on(pattern)
        if actual != item.expected:
            raise ConcurrencyConflict(pattern, item.expected, actual)

    def _check_own(self, item: Append, seq: int) -> None:
        """A stored ``msg_id`` is a duplicate of this append only on this append's subject."""
        stored_on = self._log[seq - 1][0]
        if stored_on != item.subject:
            raise ForgedDuplicate(item.subject, item.msg_id, seq, stored_on)

    async def _notify(self) -> None:
        async with self._grew:
            self._grew.notify_all()

    async def append(self, item: Append) -> int:
        """Store one event; return its sequence."""
        if item.msg_id in self._ids:
            seq = self._ids[item.msg_id]
            self._check_own(item, seq)
            return seq
        self._check(item)
        self._log.append((item.subject, encode(item.event)))
        self._ids[item.msg_id] = len(self._log)
        await self._notify()
        return len(self._log)

    async def append_many(self, items: Sequence[Append]) -> list[int | Exception]:
        """Store each item in order; an item's failure does not stop the others."""
        results: list[int | Exception] = []
        for item in items:
            try:
                results.append(await self.append(item))
            except (ConcurrencyConflict, ForgedDuplicate) as exc:
                results.append(exc)
        return results

    async def append_batch(self, items: Sequence[Append]) -> list[int]:
        """Check every item against the log as it was before the batch, then store them all.

        As nats-server does: each expected sequence sees none of the batch's own events, and a
        ``msg_id`` seen before (or twice in the batch) refuses the whole batch, no dedup.
        """
        ids = [item.msg_id for item in items]
        if len(set(ids)) < len(ids) or any(msg_id in self._ids for msg_id in ids):
            raise BatchFailed("atomic publish batch contains duplicate message id")
        try:
            for item in items:
                self._check(item)
        except ConcurrencyConflict as exc:
            raise BatchFailed(str(exc)) from exc
        first = len(self._log) + 1
        for item in items:
            self._log.append((item.subject, encode(item.event)))
            self._ids[item.msg_id] = len(self._log)
        await self._notify()
        return list(range(first, len(self._log) + 1))

    async def load(self, job: str) -> Loaded:
        """One job's events by scanning the log (fine for tests)."""
        events = [
            (index + 1, read_event(subject, data))
            for index, (subject, data) in enumerate(self._log)
            if subject.split(".")[3:4] == [job] and ".evt.job." in subject
        ]
        return Loaded(events=events, last_seq=events[-1][0] if events else 0)

    async def replay(self, from_seq: int = 1) -> AsyncIterator[tuple[int, Decoded]]:
        """Every event from ``from_seq`` to the end as of the call."""
        end = len(self._log)
        for index in range(max(from_seq, 1) - 1, end):
            yield index + 1, read_event(*self._log[index])

    async def follow(self, from_seq: int = 1) -> AsyncIterator[tuple[int, Decoded]]:
        """Every event from ``from_seq`` on, waiting for new ones."""
        seq = max(from_seq, 1)
        while True:
            wanted = seq
            async with self._grew:
                await self._grew.wait_for(lambda: len(self._log) >= wanted)  # noqa: B023
            while seq <= len(self._log):
                yield seq, read_event(*self._log[seq - 1])
                seq += 1

    async def last_seq(self) -> int:
        """The last sequence, 0 when empty."""
        return len(self._log)
