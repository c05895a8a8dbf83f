"""The ready queue: queued jobs in placement order, cheap to add to, remove from and walk.

Because ``events.policy.order_key`` does not change as time passes, a binary heap keeps the
order; removal (a job canceled or paused while queued) is lazy: the entry is forgotten in the
index and skipped when it surfaces. Pure data structure, no clock.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import TypeAlias

Entry: TypeAlias = tuple[float, int]
"""A waiting job's place: its order key, then its arrival serial (FIFO among equal keys)."""


class ReadyQueue:
    """Job ids ordered by key, then by insertion (FIFO among equal keys)."""

    def __init__(self) -> None:
        """Start empty."""
        self._heap: list[tuple[float, int, str]] = []
        self._live: dict[str, int] = {}  # job → serial of its current heap entry (compact)
        self._serial = itertools.count()

    def __len__(self) -> int:
        """Jobs waiting."""
        return len(self._live)

    def __contains__(self, job: object) -> bool:
        """Whether the job is waiting."""
        return job in self._live

    def push(self, job: str, key: float) -> None:
        """Add the job, or move it to ``key`` if it is already waiting."""
        serial = next(self._serial)
        self._live[job] = serial
        heapq.heappush(self._heap, (key, serial, job))

    def remove(self, job: str) -> None:
        """Forget the job if it waits; its heap entry is skipped later."""
        self._live.pop(job, None)

    def _fresh(self, item: tuple[float, int, str]) -> bool:
        return self._live.get(item[2]) == item[1]

    def pop(self) -> tuple[str, Entry] | None:
        """Take the first job in order, with its place (to ``put_back`` if it must wait)."""
        while self._heap:
            key, serial, job = heapq.heappop(self._heap)
            if self._live.get(job) == serial:
                del self._live[job]
                return job, (key, serial)
        return None

    def put_back(self, job: str, entry: Entry) -> None:
        """Return a popped job to exactly the place it had, ahead of later arrivals."""
        self._live[job] = entry[1]
        heapq.heappush(self._heap, (*entry, job))

    def first(self) -> tuple[Entry, str] | None:
        """The first job's place and id, without removing it."""
        job = self.peek()
        return None if job is None else ((self._heap[0][0], self._heap[0][1]), job)

    def peek(self) -> str | None:
        """The first job in order, without removing it."""
        while self._heap and not self._fresh(self._heap[0]):
            heapq.heappop(self._heap)
        return self._heap[0][2] if self._heap else None

    def in_order(self) -> Iterator[str]:
        """Every waiting job, first to last (sorts a snapshot: for walks that may stop early)."""
        for item in sorted(self._heap):
            if self._fresh(item):
                yield item[2]
