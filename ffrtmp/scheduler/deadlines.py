"""Which jobs' timers may fire by now, without walking every running job each tick.

A heap of (time, job), each time from ``timers.due_at``: the earliest a job's timer could fire.
A job may have several entries (each change of its state adds one); an entry older than the
job's state is harmless, because it is only a reason to look at the job again. ``due`` answers
without changing anything, by walking only the part of the heap at or before ``now``;
``take`` removes those entries, once the tick that looked at them is done, and names their jobs.
"""

from __future__ import annotations

import heapq


class Deadlines:
    """Jobs by the time their timer may next fire."""

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        """No job is timed yet."""
        self._heap: list[tuple[float, str]] = []

    def __len__(self) -> int:
        """Entries held (a job may have several)."""
        return len(self._heap)

    def add(self, job: str, at: float | None) -> None:
        """Look at ``job`` again at ``at`` (None: nothing to look at)."""
        if at is not None:
            heapq.heappush(self._heap, (at, job))

    def due(self, now: float) -> list[str]:
        """Jobs with an entry at or before ``now``, each once, earliest first; changes nothing."""
        heap, found, stack = self._heap, [], [0]
        while stack:  # the heap is a tree: a node later than now has no earlier child
            index = stack.pop()
            if index < len(heap) and heap[index][0] <= now:
                found.append(heap[index])
                stack += (2 * index + 1, 2 * index + 2)
        return list(dict.fromkeys(job for _, job in sorted(found)))

    def take(self, now: float) -> list[str]:
        """Remove every entry at or before ``now``; their jobs, each once, earliest first.

        Entries filed since ``due`` was asked (a decision applied meanwhile) are taken too, so
        the caller files every job it gets here again.
        """
        heap, taken = self._heap, []
        while heap and heap[0][0] <= now:
            taken.append(heapq.heappop(heap)[1])
        return list(dict.fromkeys(taken))

    def keep_only(self, jobs: set[str]) -> None:
        """Drop the entries of jobs no longer timed, when they outnumber the timed ones."""
        if len(self._heap) > 4 * len(jobs) + 1024:
            self._heap = [entry for entry in self._heap if entry[1] in jobs]
            heapq.heapify(self._heap)
