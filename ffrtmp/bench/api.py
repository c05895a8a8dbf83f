"""``ffrtmp bench api``: the HTTP API's cost over NATS, and live event streams held for a minute.

The farm is the shipped nats-server (fsync always) with a real ``ffrtmp scheduler run`` and a real
``ffrtmp api run`` process; no agent, so every job waits where the bench puts it.

- **Submit latency** at a fixed offered rate (200 requests/s, open loop: each request starts on
  its schedule whether or not the earlier ones have answered), from send to the answer, which
  includes the scheduler's decision. The same submits are then sent in this process over NATS
  with ``ffrtmp.client`` (what ``ffrtmp jobs submit`` does, without its process start), at the
  same rate, interleaved round by round; the API's overhead is the ratio of the medians.
- **Event streams**: ``streams`` jobs that wait for approval, each followed by one
  ``text/event-stream`` for ``hold_s`` seconds while a command every few seconds gives each job
  one more event (a refused ``resume``, recorded as ``CommandRefused``); then each is canceled and
  its stream ends. Every stream must have received exactly the job's events as the log holds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

import httpx
import msgspec

from events.commands import SubmitJob
from events.connection import NatsOptions, open_nats
from events.errors import FfrtmpError
from events.spec import JobSpec
from events.streams import ensure_streams
from events.subjects import Subjects
from ffrtmp.bench.harness import embedded_server, ffrtmp_command
from ffrtmp.bench.stats import median, percentile
from ffrtmp.client.conn import Address, command_id, connect
from ffrtmp.client.decision import send_and_report
from ffrtmp.client.probe import http_ok
from ffrtmp.lifeline import PREEXEC, end
from ffrtmp.natsd import free_port

PREFIX: Final = "benchapi"
READY_S: Final = 60.0
SPEC: Final = {"scenario": "480p-h264", "queue": "batch"}
NUDGE_S: Final = 5.0
"""How often each followed job gets one more event."""
_LIMITS: Final = httpx.Limits(max_connections=400, max_keepalive_connections=100)


class ApiBenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The offered rate, how many submits a round, rounds, and the streams to hold."""

    rate: float = 200.0
    requests: int = 1000
    rounds: int = 3
    streams: int = 100
    hold_s: float = 60.0


class ApiReport(msgspec.Struct, frozen=True, kw_only=True):
    """Latencies in milliseconds (medians of the rounds' percentiles) and the streams' tally."""

    benchmark: str
    rate: float
    requests: int
    rounds: int
    api_p50_ms: float
    api_p99_ms: float
    nats_p50_ms: float
    nats_p99_ms: float
    overhead_ratio_p50: float
    overhead_ratio_p99: float
    offered_rate_met: float
    """The worst round's achieved start rate over the offered one (1.0: on schedule)."""
    streams: int
    hold_s: float
    events_expected: int
    events_received: int
    events_lost: int
    events_doubled: int


async def _open_loop(
    rate: float, count: int, one: Callable[[], Awaitable[None]]
) -> tuple[list[float], float]:
    """Start ``one`` ``count`` times at ``rate`` a second; each latency, and the start rate met."""
    latencies: list[float] = []
    started = time.perf_counter()

    async def timed() -> None:
        begun = time.perf_counter()
        await one()
        latencies.append(time.perf_counter() - begun)

    tasks = []
    for index in range(count):
        delay = started + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)  # the schedule of an open-loop load
        tasks.append(asyncio.create_task(timed()))
    last_start = time.perf_counter() - started
    await asyncio.gather(*tasks)
    met = min(1.0, (count - 1) / rate / last_start) if last_start > 0 else 1.0
    return latencies, met


async def _until_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FfrtmpError(f"the API exited with {process.returncode} at start")
        if await asyncio.to_thread(http_ok, url + "readyz", 2.0):
            return
        await asyncio.sleep(0.1)  # polling a process that says nothing when it is up
    raise FfrtmpError(f"the API was not ready within {READY_S:.0f} s")


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A real ``ffrtmp`` process that ends with this one (on the main thread: ``lifeline``)."""
    return subprocess.Popen(  # noqa: S603 -- our own command
        [*ffrtmp_command(), *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=PREEXEC,  # noqa: PLW1509 -- async-signal-safe: one prctl call
    )


@contextlib.asynccontextmanager
async def _processes(nats_url: str, api_port: int, env: dict[str, str]) -> AsyncIterator[None]:
    """``ffrtmp scheduler run`` and ``ffrtmp api run`` as real processes for the block."""
    common = ["--nats", nats_url, "--prefix", PREFIX]
    scheduler = _spawn(["scheduler", "run", *common], env)
    api = _spawn(["api", "run", "--api-port", str(api_port), *common], env)
    try:
        await _until_ready(f"http://127.0.0.1:{api_port}/", api)
        yield
    finally:
        for process in (api, scheduler):
            await asyncio.to_thread(end, process, 30)


async def _submit_rounds(
    api: httpx.AsyncClient, where: Address, settings: ApiBenchSettings
) -> tuple[dict[str, list[float]], float]:
    """Per round, the p50 and p99 of each path (keys ``api50``, ``api99``, ``nats50``, …)."""
    figures: dict[str, list[float]] = {k: [] for k in ("api50", "api99", "nats50", "nats99")}
    worst_met = 1.0
    spec = msgspec.convert(SPEC, JobSpec)
    async with connect(where) as conn:

        async def by_api() -> None:
            reply = await api.post("/api/v1/jobs", json=SPEC)
            if reply.status_code != 201 or not reply.json()["decision"]["decided"]:
                raise FfrtmpError(f"an API submit answered {reply.status_code}: {reply.text}")

        async def by_nats() -> None:
            command = SubmitJob(id=command_id(), job=command_id(), at=time.time(), by="bench",
                                spec=spec)  # fmt: skip
            if not (await send_and_report(conn, command)).decided:
                raise FfrtmpError("a NATS submit was not decided")

        await by_api()  # warm both paths: connections, the scheduler's first decision
        await by_nats()
        for index in range(settings.rounds):
            order = [("api", by_api), ("nats", by_nats)]
            for name, one in order if index % 2 == 0 else order[::-1]:
                latencies, met = await _open_loop(settings.rate, settings.requests, one)
                figures[f"{name}50"].append(percentile(latencies, 0.50) * 1000)
                figures[f"{name}99"].append(percentile(latencies, 0.99) * 1000)
                worst_met = min(worst_met, met)
    return figures, worst_met


async def _stream(
    base: str, job: str, received: dict[str, list[int]], opened: asyncio.Event, count: list[int]
) -> None:
    """Follow one job's event stream to its end, noting each ``history`` event's sequence."""
    headers = {"Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(timeout=None) as client,  # noqa: S113 -- held open on purpose
        client.stream("GET", f"{base}/api/v1/jobs/{job}/events", headers=headers) as reply,
    ):
        if reply.status_code != 200:
            raise FfrtmpError(f"a stream answered {reply.status_code}")
        count[0] += 1
        if count[0] == len(received):
            opened.set()
        event = ""
        async for line in reply.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "history":
                received[job].append(int(json.loads(line.split(":", 1)[1])["seq"]))
            elif line.startswith("data:") and event == "end":
                return


async def _hold_streams(
    api: httpx.AsyncClient, base: str, settings: ApiBenchSettings
) -> tuple[int, int, int, int]:
    """Expected, received, lost and doubled events over every held stream."""
    jobs = []
    for _ in range(settings.streams):
        reply = await api.post("/api/v1/jobs", json={**SPEC, "approval_required": True})
        jobs.append(str(reply.json()["job"]["job"]))
    received: dict[str, list[int]] = {job: [] for job in jobs}
    opened, count = asyncio.Event(), [0]
    followers = [asyncio.create_task(_stream(base, j, received, opened, count)) for j in jobs]
    await asyncio.wait_for(opened.wait(), READY_S)
    deadline = time.monotonic() + settings.hold_s
    while time.monotonic() < deadline:
        await asyncio.gather(*(api.post(f"/api/v1/jobs/{job}/resume") for job in jobs))
        await asyncio.sleep(min(NUDGE_S, max(0.0, deadline - time.monotonic())))
    await asyncio.gather(*(api.post(f"/api/v1/jobs/{job}/cancel") for job in jobs))
    await asyncio.wait_for(asyncio.gather(*followers), READY_S)
    expected = lost = doubled = got = 0
    for job in jobs:
        history = [int(e["seq"]) for e in (await api.get(f"/api/v1/jobs/{job}/events")).json()]
        seen = received[job]
        expected, got = expected + len(history), got + len(seen)
        lost += len(set(history) - set(seen))
        doubled += len(seen) - len(set(seen))
    return expected, got, lost, doubled


async def bench_api(settings: ApiBenchSettings) -> ApiReport:
    """Run both parts against one farm; the report's figures."""
    with tempfile.TemporaryDirectory(prefix="ffrtmp-bench-api-") as home:
        env = {**os.environ, "XDG_CONFIG_HOME": home, "NO_COLOR": "1"}
        for name in ("FFRTMP_CONFIG", "FFRTMP_API_TOKENS", "FFRTMP_API_TOKENS_FILE"):
            env.pop(name, None)
        async with embedded_server() as server:
            nc = await open_nats(NatsOptions(url=server.url))
            try:
                await ensure_streams(nc, Subjects(PREFIX))
            finally:
                await nc.close()
            api_port = free_port()
            base = f"http://127.0.0.1:{api_port}"
            where = Address(url=server.url, subjects=Subjects(PREFIX))
            async with (
                _processes(server.url, api_port, env),
                httpx.AsyncClient(base_url=base, timeout=60.0, limits=_LIMITS) as api,
            ):
                figures, met = await _submit_rounds(api, where, settings)
                expected, got, lost, doubled = await _hold_streams(api, base, settings)
    api50, api99 = median(figures["api50"]), median(figures["api99"])
    nats50, nats99 = median(figures["nats50"]), median(figures["nats99"])
    return ApiReport(
        benchmark="api",
        rate=settings.rate,
        requests=settings.requests,
        rounds=settings.rounds,
        api_p50_ms=round(api50, 2),
        api_p99_ms=round(api99, 2),
        nats_p50_ms=round(nats50, 2),
        nats_p99_ms=round(nats99, 2),
        overhead_ratio_p50=round(api50 / nats50, 3),
        overhead_ratio_p99=round(api99 / nats99, 3),
        offered_rate_met=round(met, 3),
        streams=settings.streams,
        hold_s=settings.hold_s,
        events_expected=expected,
        events_received=got,
        events_lost=lost,
        events_doubled=doubled,
    )
