"""``ffrtmp bench fold``: what decoding and folding one event costs, alone and in a replay.

Per event type: ``decode_event`` of its bytes, ``evolve`` from the state before it, and
``msgspec.structs.replace`` of just the fields that event changes (the least a fold can do), so
the difference is the dispatch (``match``) and the rest of ``evolve``. Then the same four-event
histories decoded and folded in a stream, as ``replay`` does, where allocation, the garbage
collector and the working set of many jobs add to those figures. No server, no I/O.
"""

from __future__ import annotations

import gc
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any, Final

import msgspec

from events.codec import decode_event, encode
from events.job import JobState, evolve, initial
from events.store import Append
from events.subjects import Subjects
from ffrtmp.bench.workload import EVENTS_PER_JOB, T0, job_id, step

_SUBJECTS: Final = Subjects("fold")
_NS: Final = 1e9


class EventCost(msgspec.Struct, frozen=True, kw_only=True):
    """Nanoseconds one event of a type costs, each the best of several timed batches."""

    event: str
    bytes: int
    decode_ns: float
    evolve_ns: float
    replace_ns: float


class FoldReport(msgspec.Struct, frozen=True, kw_only=True):
    """Per-type costs, and decode plus fold per event in a stream, GC on and off."""

    benchmark: str = "fold"
    per_event: list[EventCost]
    stream_events: int
    stream_window: int
    stream_ns_per_event: float
    stream_ns_per_event_gc_off: float
    decode_only_ns_per_event: float


def bench_fold(jobs: int = 75_000, window: int = 1_000, number: int = 100_000) -> FoldReport:
    """Measure one job's four events alone, then ``jobs`` histories folded as a stream."""
    stream = _stream(jobs, window)
    gc.collect()
    fold_ns = _median_ns(lambda: _fold(stream)) / len(stream)
    gc.disable()
    try:
        fold_off_ns = _median_ns(lambda: _fold(stream)) / len(stream)
    finally:
        gc.enable()
    return FoldReport(
        per_event=_per_event(number),
        stream_events=len(stream),
        stream_window=window,
        stream_ns_per_event=round(fold_ns, 1),
        stream_ns_per_event_gc_off=round(fold_off_ns, 1),
        decode_only_ns_per_event=round(_median_ns(lambda: _decode(stream)) / len(stream), 1),
    )


def _per_event(number: int) -> list[EventCost]:
    job = job_id("fold", 0)
    items = [step(_SUBJECTS, job, i, T0, 0) for i in range(EVENTS_PER_JOB)]
    costs, state = [], initial(job)
    for item in items:
        costs.append(_cost(item, state, number))
        event: Any = item.event  # a job event, by construction
        state = evolve(state, event)
    return costs


def _cost(item: Append, state: JobState, number: int) -> EventCost:
    data = encode(item.event)
    event: Any = item.event
    after = evolve(state, event)
    changed = _changed(state, after)
    return EventCost(
        event=type(event).__name__,
        bytes=len(data),
        decode_ns=round(_per_call(lambda: decode_event(data), number), 1),
        evolve_ns=round(_per_call(lambda: evolve(state, event), number), 1),
        replace_ns=round(_per_call(lambda: msgspec.structs.replace(state, **changed), number), 1),
    )


def _changed(before: JobState, after: JobState) -> dict[str, Any]:
    old, new = msgspec.structs.asdict(before), msgspec.structs.asdict(after)
    return {name: value for name, value in new.items() if old[name] != value}


def _per_call(call: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5)) / number * _NS


def _stream(jobs: int, window: int) -> list[bytes]:
    """Histories interleaved as a farm writes them: ``window`` jobs in flight at a time."""
    stream: list[bytes] = []
    for first in range(0, jobs, window):
        names = [job_id("fold", i) for i in range(first, min(jobs, first + window))]
        for index in range(EVENTS_PER_JOB):
            stream += [encode(step(_SUBJECTS, job, index, T0, 0).event) for job in names]
    return stream


def _fold(stream: list[bytes]) -> None:
    states: dict[str, JobState] = {}
    for data in stream:
        event: Any = decode_event(data)
        state = states.get(event.job)
        states[event.job] = evolve(state if state is not None else initial(event.job), event)


def _decode(stream: list[bytes]) -> None:
    for data in stream:
        decode_event(data)


def _median_ns(run: Callable[[], None], times: int = 3) -> float:
    """The median of ``times`` runs, in nanoseconds."""
    spans = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        spans.append(time.perf_counter() - start)
    return statistics.median(spans) * _NS
