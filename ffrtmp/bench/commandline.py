"""``ffrtmp bench cli``: the operator's path, timed as whole processes against a running farm.

An operator waits for the process, not for a function: each figure is the wall time of the
installed ``ffrtmp`` command from exec to exit, imports and connection included. The farm is the
shipped nats-server (fsync always) with a real ``ffrtmp scheduler run`` process deciding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from statistics import median
from typing import Final

import msgspec

from events.errors import FfrtmpError
from ffrtmp.bench.harness import embedded_server, ffrtmp_command
from ffrtmp.lifeline import end

PREFIX: Final = "benchcli"
TARGETS: Final = {"help_ms": 150.0, "submit_ms": 300.0, "bulk_jobs_per_s": 2000.0}  # issue 16
SCHEDULER_READY_S: Final = 60.0


class CliBenchSettings(msgspec.Struct, frozen=True, kw_only=True):
    """How many runs of each command, and how many specs the bulk file holds."""

    runs: int = 5
    bulk_jobs: int = 10_000


class CliReport(msgspec.Struct, frozen=True, kw_only=True):
    """Medians of whole-process wall times; the bulk rate counts the process's whole life."""

    benchmark: str
    runs: int
    help_ms: float
    submit_ms: float
    bulk_jobs: int
    bulk_s: float
    bulk_jobs_per_s: float


def _timed(argv: list[str], env: dict[str, str], stdin: str | None = None) -> float:
    """Seconds from exec to exit; a failing command is a failed benchmark."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 -- our own command, fixed arguments
        argv, env=env, input=stdin, capture_output=True, text=True, timeout=600, check=False
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise FfrtmpError(f"{' '.join(argv[1:4])} … exited {done.returncode}: {done.stderr}")
    return seconds


@contextlib.contextmanager
def _scheduler(env: dict[str, str]) -> Iterator[None]:
    """A real ``ffrtmp scheduler run`` process for the block."""
    process = subprocess.Popen(  # noqa: S603 -- our own command
        [
            *ffrtmp_command(),
            "scheduler",
            "run",
            "--nats",
            env["FFRTMP_NATS_URL"],
            "--prefix",
            PREFIX,
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        end(process, 30)


def _await_scheduler(cli: list[str], env: dict[str, str]) -> None:
    """Block until a submit is decided: the scheduler is up and leading."""
    deadline = time.monotonic() + SCHEDULER_READY_S
    while time.monotonic() < deadline:
        done = subprocess.run(  # noqa: S603 -- our own command
            [*cli, "jobs", "submit", "--scenario", "480p-h264", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0 and json.loads(done.stdout).get("decided"):
            return
    raise FfrtmpError(f"no scheduler decided a submit within {SCHEDULER_READY_S:.0f} s")


def _bulk_file(jobs: int) -> str:
    line = '{"scenario": "480p-h264", "queue": "batch"}\n'
    return line * jobs


async def bench_cli(settings: CliBenchSettings) -> CliReport:
    """Time ``--help``, one ``jobs submit`` and a bulk ``--file`` submit against a real farm."""
    cli = ffrtmp_command()
    with tempfile.TemporaryDirectory(prefix="ffrtmp-bench-cli-") as home:
        env = {**os.environ, "XDG_CONFIG_HOME": home, "NO_COLOR": "1", "FFRTMP_PREFIX": PREFIX}
        env.pop("FFRTMP_CONFIG", None)
        helps = [
            await asyncio.to_thread(_timed, [*cli, "--help"], env) for _ in range(settings.runs)
        ]
        async with embedded_server() as server:
            farm_env = {**env, "FFRTMP_NATS_URL": server.url}
            submit_s, bulk_s = await asyncio.to_thread(_with_farm, cli, farm_env, settings)
    return CliReport(
        benchmark="cli",
        runs=settings.runs,
        help_ms=round(median(helps) * 1000, 1),
        submit_ms=round(submit_s * 1000, 1),
        bulk_jobs=settings.bulk_jobs,
        bulk_s=round(bulk_s, 3),
        bulk_jobs_per_s=round(settings.bulk_jobs / bulk_s, 1),
    )


def _with_farm(
    cli: list[str], env: dict[str, str], settings: CliBenchSettings
) -> tuple[float, float]:
    """The submit and bulk figures, with the streams made and a scheduler running."""
    _timed([*cli, "streams", "create"], env)  # the setup step; a failure says why, here
    with _scheduler(env):
        _await_scheduler(cli, env)
        submit = [*cli, "jobs", "submit", "--scenario", "480p-h264"]
        submit_s = median(_timed(submit, env) for _ in range(settings.runs))
        bulk = [*cli, "jobs", "submit", "--file", "-", "--decision-wait-s", "0"]
        bulk_s = _timed(bulk, env, stdin=_bulk_file(settings.bulk_jobs))
    return submit_s, bulk_s
