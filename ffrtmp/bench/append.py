"""``ffrtmp bench append``: the store's pipelined ``append_many`` against raw ``publish_async``.

Both sides write the same events, first events of distinct jobs so that the expected sequence 0
holds, with the same headers (``Nats-Msg-Id`` and the expected last subject sequence on the
job's wildcard), in chunks of the same size, each into a fresh stream. Ours pays for encoding
and header building; raw publishes bytes and header dicts prepared before the clock starts. The
same raw publish against a server with the default fsync gives the cost of ``sync_interval:
always`` as a separate figure, and ``append_grouped`` (atomic batches of the same chunks, one
fsync each: what the scheduler's passes use) the gain of group commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Final, TypeVar

import msgspec
import nats

from events.codec import encode
from events.errors import FfrtmpError
from events.grouped import append_grouped
from events.jetstream import JetStreamEventStore
from events.store import Append
from events.streams import events_stream
from events.subjects import Subjects
from ffrtmp.bench.harness import Measure, embedded_server, interleaved
from ffrtmp.bench.stats import Comparison, compare, median, rate, ratio
from ffrtmp.bench.workload import T0, headers, job_id, step

TARGET: Final = 0.8
T = TypeVar("T")


class AppendSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How much to append, how often, and whether to measure the default-fsync server too."""

    messages: int = 20_000
    rounds: int = 5
    chunk: int = 1_000
    sync_cost: bool = True


async def bench_append(settings: AppendSettings) -> Comparison:
    """Run the interleaved rounds on one server (and one with default fsync); summarise."""
    async with contextlib.AsyncExitStack() as stack:
        server = await stack.enter_async_context(embedded_server())
        measures: dict[str, Measure] = {
            "ours": lambda i: _ours(server.url, settings, f"ours{i}"),
            "raw": lambda i: _raw(server.url, settings, f"raw{i}"),
            "grouped": lambda i: _ours(server.url, settings, f"grouped{i}", grouped=True),
        }
        if settings.sync_cost:
            plain = await stack.enter_async_context(embedded_server(default_sync=True))
            measures["raw_default_sync"] = lambda i: _raw(plain.url, settings, f"plain{i}")
        rates = await interleaved(settings.rounds, measures)
    return compare("append", settings.messages, rates, TARGET, _sync_figures(rates))


def _sync_figures(rates: dict[str, list[float]]) -> dict[str, float]:
    grouped = median(rates["grouped"])
    figures = {
        "grouped_msgs_per_s": round(grouped, 1),
        "grouped_vs_raw_ratio": round(ratio(grouped, median(rates["raw"])), 3),
    }
    if "raw_default_sync" not in rates:
        return figures
    default = median(rates["raw_default_sync"])
    return figures | {
        "raw_default_sync_msgs_per_s": round(default, 1),
        "sync_always_slowdown": round(ratio(default, median(rates["raw"])), 2),
    }


def _items(prefix: str, messages: int) -> list[Append]:
    subjects = Subjects(prefix)
    return [step(subjects, job_id(prefix, i), 0, T0 + i, 0) for i in range(messages)]


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def _ours(url: str, settings: AppendSettings, prefix: str, *, grouped: bool = False) -> float:
    """``append_many`` (or ``append_grouped``) chunk after chunk into a fresh stream; msgs/s."""
    subjects = Subjects(prefix)
    items = _items(prefix, settings.messages)
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(events_stream(subjects))
        store = JetStreamEventStore(nc, subjects)
        await store.start()
        start = time.perf_counter()
        for chunk in _chunks(items, settings.chunk):
            _check(await (append_grouped(store, chunk) if grouped else store.append_many(chunk)))
        return rate(len(items), time.perf_counter() - start)
    finally:
        await nc.close()


async def _raw(url: str, settings: AppendSettings, prefix: str) -> float:
    """``publish_async`` of the same bytes and headers, chunk after chunk; messages per second."""
    subjects = Subjects(prefix)
    ready = [(i.subject, encode(i.event), headers(i)) for i in _items(prefix, settings.messages)]
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(events_stream(subjects))
        start = time.perf_counter()
        for chunk in _chunks(ready, settings.chunk):
            acks = [await js.publish_async(s, data, headers=h) for s, data, h in chunk]
            await asyncio.gather(*acks)
        return rate(len(ready), time.perf_counter() - start)
    finally:
        await nc.close()


def _check(results: list[int | Exception]) -> None:
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        raise FfrtmpError(f"{len(failed)} appends failed in the benchmark, first: {failed[0]}")
