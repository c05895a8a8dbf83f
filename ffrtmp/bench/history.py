"""``ffrtmp bench append --history``: an append's concurrency check against the log's size.

Every append to a job names the last sequence its writer saw and the subject it is checked
against (``Nats-Expected-Last-Subject-Sequence-Subject``): a wildcard over all of the job's
subjects, ``<prefix>.evt.job.<job>.*`` until the assignment got a subject of its own, one token
longer, and ``<prefix>.evt.job.<job>.>`` since. The server finds that last sequence in its
per-subject index and the message blocks it points to, so its cost may depend on the stream's
size. This bench fills a stream with ``history`` events of whole job histories (on a
default-fsync server, for speed), restarts the shipped server on the same store, and appends
two events to each of ``appends`` fresh jobs (the first expecting 0, the second the first's
sequence), raw nats-py ``publish_async`` in chunks, with the check made four ways, interleaved
round by round:

- ``none``: no expected-sequence header (the floor);
- ``exact``: the expected sequence on the publish subject itself;
- ``star``: on the job's ``<prefix>.evt.job.<job>.*`` (what shipped before);
- ``gt``: on the job's ``<prefix>.evt.job.<job>.>`` (what ships: ``Subjects.job_events``).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

import msgspec
import nats
from nats.aio.client import Client as NatsClient

from events import subjects as wire
from events.codec import encode
from events.errors import FfrtmpError
from events.streams import events_stream
from events.subjects import Subjects
from ffrtmp.bench.harness import default_sync_config, interleaved
from ffrtmp.bench.stats import median, rate
from ffrtmp.bench.workload import EVENTS_PER_JOB, T0, job_id, step
from ffrtmp.natsd import NatsServer, NatsSettings, free_port

PREFIX: Final = "hist"
FILL_CHUNK: Final = 5_000
FILL_AGENTS: Final = 1_000
MODES: Final = ("none", "exact", "star", "gt")
ACK_WAIT_S: Final = 60.0
WARMUP: Final = -1
"""The round index of each mode's unmeasured first run."""


class HistorySettings(msgspec.Struct, frozen=True, kw_only=True):
    """The stream sizes to measure at, appends per measurement, rounds, the server's fsync."""

    sizes: tuple[int, ...] = (0, 100_000, 1_000_000)
    appends: int = 2_000
    chunk: int = 500
    rounds: int = 3
    default_sync: bool = False


class HistoryRow(msgspec.Struct, frozen=True, kw_only=True):
    """Appends per second (median and per round) with one kind of check at one stream size."""

    history: int
    mode: str
    appends_per_s: float
    rounds: list[float]


class HistoryReport(msgspec.Struct, frozen=True, kw_only=True):
    """Every size and mode; ``flat`` is each mode's rate at the largest size over the smallest."""

    settings: HistorySettings
    fsync: str
    rows: list[HistoryRow]
    flat: dict[str, float]
    stored: list[int]
    """Messages in each size's stream at the end: the fill and every append that landed."""


async def bench_history(settings: HistorySettings) -> HistoryReport:
    """Measure every mode at every size, each size on a fresh server and store."""
    rows: list[HistoryRow] = []
    stored: list[int] = []
    for size in settings.sizes:
        async with filled(size, default_sync=settings.default_sync) as url:
            measures = {m: HistoryMeasure(url, settings, m) for m in MODES}
            for measure in measures.values():  # a fresh server's first appends are slower
                await measure(WARMUP)
            rates = await interleaved(settings.rounds, measures)
            stored.append(await _stored(url))
        rows.extend(
            HistoryRow(
                history=size,
                mode=m,
                appends_per_s=round(median(r), 1),
                rounds=[round(x, 1) for x in r],
            )
            for m, r in rates.items()
        )
    return HistoryReport(
        settings=settings,
        fsync="default" if settings.default_sync else "always",
        rows=rows,
        flat=_flat(rows, settings.sizes),
        stored=stored,
    )


async def _stored(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info(Subjects(PREFIX).events_stream)
        return info.state.messages
    finally:
        await nc.close()


def _flat(rows: Sequence[HistoryRow], sizes: Sequence[int]) -> dict[str, float]:
    by = {(r.history, r.mode): r.appends_per_s for r in rows}
    low, high = min(sizes), max(sizes)
    return {m: round(by[high, m] / by[low, m], 3) for m in MODES if by.get((low, m))}


@contextlib.asynccontextmanager
async def filled(size: int, *, default_sync: bool = False) -> AsyncIterator[str]:
    """A server whose events stream holds ``size`` events; filled fast, then restarted."""
    with tempfile.TemporaryDirectory(prefix="ffrtmp-bench-history-") as tmp:
        store = str(Path(tmp) / "nats")
        fast = str(default_sync_config(Path(tmp)))
        async with NatsServer(_settings(store, fast)) as server:
            await _fill(server.url, size)
        shipped = fast if default_sync else None
        async with NatsServer(_settings(store, shipped)) as server:
            yield server.url


def _settings(store: str, config: str | None) -> NatsSettings:
    return NatsSettings(port=free_port(), store_dir=store, host="127.0.0.1", config=config)


async def _fill(url: str, size: int) -> None:
    """``size`` events of whole job histories, published without checks, chunk by chunk."""
    subjects = Subjects(PREFIX)
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.add_stream(events_stream(subjects))
        for first in range(0, size, FILL_CHUNK):
            acks = [
                await js.publish_async(subject, data)
                for subject, data in _history_messages(
                    subjects, first, min(size, first + FILL_CHUNK)
                )
            ]
            await asyncio.gather(*acks)
    finally:
        await nc.close()


def _history_messages(subjects: Subjects, first: int, stop: int) -> list[tuple[str, bytes]]:
    """Events ``first`` to ``stop`` of the fill: job ``n // 4``'s event ``n % 4``.

    Assignments go on their agent's subject, over ``FILL_AGENTS`` agents, as the scheduler
    appends them: the index then holds as many subjects as a farm's log does.
    """
    found = []
    for n in range(first, stop):
        job, index = n // EVENTS_PER_JOB, n % EVENTS_PER_JOB
        name = job_id("fill", job)
        item = step(subjects, name, index, T0, 0)
        subject = subjects.assignment(name, fill_agent(job)) if index == 1 else None
        found.append((subject or item.subject, encode(item.event)))
    return found


def fill_agent(index: int) -> str:
    """The agent the fill's job ``index`` was assigned to."""
    return f"agent-{index % FILL_AGENTS:04d}"


class HistoryMeasure:
    """One mode's measurement: a callable of the round's index returning appends per second."""

    def __init__(self, url: str, settings: HistorySettings, mode: str) -> None:
        """Keep what each round needs."""
        self.url, self.settings, self.mode = url, settings, mode

    async def __call__(self, index: int) -> float:
        """Two appends to each of ``appends`` fresh jobs; appends per second."""
        subjects = Subjects(PREFIX)
        jobs = [job_id(f"{self.mode}{index}", i) for i in range(self.settings.appends)]
        nc = await nats.connect(self.url)
        try:
            start = time.perf_counter()
            for first in range(0, len(jobs), self.settings.chunk):
                await self._two(nc, subjects, jobs[first : first + self.settings.chunk])
            return rate(2 * len(jobs), time.perf_counter() - start)
        finally:
            await nc.close()

    async def _two(self, nc: NatsClient, subjects: Subjects, jobs: Sequence[str]) -> None:
        """The submission of each job expecting 0, then its assignment expecting that."""
        seqs = await self._publish(nc, subjects, jobs, 0, [0] * len(jobs))
        await self._publish(nc, subjects, jobs, 1, seqs)

    async def _publish(
        self, nc: NatsClient, subjects: Subjects, jobs: Sequence[str], event: int, last: list[int]
    ) -> list[int]:
        js = nc.jetstream()
        acks = []
        for job, expected in zip(jobs, last, strict=True):
            item = step(subjects, job, event, T0, expected)
            headers = {wire.MSG_ID: item.msg_id, **self._check(subjects, job, expected)}
            acks.append(await js.publish_async(item.subject, encode(item.event), headers=headers))
        try:
            done = await asyncio.wait_for(asyncio.gather(*acks), ACK_WAIT_S)
        except TimeoutError as exc:  # nats-py leaves a refused publish's future pending
            raise FfrtmpError("an append of the history benchmark was refused") from exc
        return [ack.seq for ack in done]

    def _check(self, subjects: Subjects, job: str, expected: int) -> dict[str, str]:
        seq = {wire.EXPECTED_LAST_SUBJECT_SEQ: str(expected)}
        match self.mode:
            case "none":
                return {}
            case "exact":
                return seq
            case "star":
                star = f"{subjects.prefix}.evt.job.{job}.*"
                return {**seq, wire.EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: star}
            case _:
                return {**seq, wire.EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: subjects.job_events(job)}
