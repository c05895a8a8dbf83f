"""``ffrtmp bench chaos``: a seeded, bounded run of a farm whose parts are killed at random.

For ``minutes`` the harness submits short jobs at a steady rate to a farm of real processes
(``bench.chaosfarm``: nats-server, two schedulers, agents, the projector) and, at moments drawn
from ``seed``, kills one of them with SIGKILL and restarts it a moment later. Then it stops
submitting and killing, waits for every job to end, and asks the checker (``ffrtmp.check``)
whether the log kept every promise, the projector's database included, and reads the agents'
execution logs to prove no attempt ran twice.

Recovery after a kill is read from the log: the time from the kill to the next ``JobAssigned``
(the farm placing work again). The same seed draws the same kills at the same offsets; what the
processes do in between is up to the machine.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import statistics
import tempfile
import time
from pathlib import Path

import msgspec

from events.commands import SubmitJob
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.job_events import JobAssigned
from events.natserrors import FAILURES
from events.spec import JobSpec
from events.subjects import Subjects
from ffrtmp.bench.chaosagent import read_executions
from ffrtmp.bench.chaosfarm import ChaosFarm, Component, FarmSettings
from ffrtmp.check import CheckSettings, Report
from ffrtmp.check.projection import check_projection
from ffrtmp.check.read import check_store
from ffrtmp.client.submit import submit

POLL_S = 1.0  # how often the end of the run is looked for


class ChaosSettings(msgspec.Struct, frozen=True, kw_only=True):
    """One run's length, seed, load and kill pace."""

    minutes: float = 3.0
    seed: int = 7
    rate: float = 2.0  # jobs submitted per second
    agents: int = 2
    slots: int = 2
    run_s: float = 0.3
    kill_every_s: tuple[float, float] = (4.0, 9.0)  # a kill every uniform(a, b) seconds
    down_s: tuple[float, float] = (0.3, 1.5)  # how long a killed process stays down
    settle_s: float = 240.0  # after the last kill, how long every job may take to end
    root: str | None = None  # the run's directory; a temporary one by default


class Kill(msgspec.Struct, frozen=True, kw_only=True):
    """One kill: what, when (seconds into the run) and for how long."""

    component: Component
    target: str
    at_s: float
    down_s: float
    recovery_s: float | None = None  # kill to the next JobAssigned


class Recovery(msgspec.Struct, frozen=True, kw_only=True):
    """Recovery times of one component's kills."""

    kills: int
    median_s: float | None
    max_s: float | None


class ChaosReport(msgspec.Struct, kw_only=True):
    """What a run did and found."""

    seed: int
    minutes: float
    jobs: int
    statuses: dict[str, int]
    events: int
    kills: dict[str, int]
    recovery: dict[str, Recovery]
    executions: int
    ran_twice: list[str]
    violations: list[str]
    kill_log: list[Kill]

    @property
    def ok(self) -> bool:
        """No violation and nothing ran twice."""
        return not self.violations and not self.ran_twice


def _spec() -> JobSpec:
    return JobSpec(scenario="480p-h264", duration_s=1.0, timeout_s=20.0, max_retries=10)


class Submitter:
    """Submits jobs at a steady rate through the client's door; an unanswered one is retried.

    Each submit is asked of the leading scheduler and stored on the commands stream when none
    answers (``client.submit``), as the CLI sends it: a scheduler killed mid-request leaves the
    stored copy, decided once by the next leader.
    """

    def __init__(self, store: JetStreamEventStore, rate: float) -> None:
        """Submit through ``store``'s connection under its prefix."""
        self._nc = store.nc
        self._js = store.nc.jetstream(timeout=2.0)
        self._subjects: Subjects = store.subjects
        self._gap = 1.0 / rate
        self.jobs: list[str] = []

    async def run(self) -> None:
        """Submit until cancelled."""
        while True:
            job = f"c{len(self.jobs):05d}"
            command = SubmitJob(id=f"submit-{job}", job=job, at=time.time(), spec=_spec())
            while True:
                try:
                    await submit(self._nc, self._js, self._subjects, command)
                    break
                except FAILURES:
                    await asyncio.sleep(0.2)  # the server is down: same id, no duplicate
            self.jobs.append(job)
            await asyncio.sleep(self._gap)


class Killer:
    """Kills and restarts at seeded moments; records what it did."""

    def __init__(self, farm: ChaosFarm, settings: ChaosSettings, started: float) -> None:
        """Draw from ``settings.seed``; times are seconds since ``started`` (monotonic)."""
        self._farm, self._settings, self._started = farm, settings, started
        self._rng = random.Random(settings.seed)  # noqa: S311 -- a reproducible schedule
        self.kills: list[tuple[Kill, float]] = []  # with the wall-clock time of the kill

    async def run(self, until_s: float) -> None:
        """Kill, wait, restart, until ``until_s`` seconds into the run."""
        components = list(Component)
        while True:
            await asyncio.sleep(self._rng.uniform(*self._settings.kill_every_s))
            if time.monotonic() - self._started > until_s:
                return
            component = self._rng.choice(components)
            targets = self._farm.targets(component)
            index = self._rng.randrange(len(targets))
            down = self._rng.uniform(*self._settings.down_s)
            kill = Kill(
                component=component,
                target=targets[index],
                at_s=round(time.monotonic() - self._started, 2),
                down_s=round(down, 2),
            )
            self._farm.kill(component, index)
            self.kills.append((kill, time.time()))
            await asyncio.sleep(down)
            await self._farm.restart(component, index)


async def run_chaos(settings: ChaosSettings) -> ChaosReport:
    """One run; see the module doc."""
    if settings.root is not None:
        return await _run(settings, Path(settings.root))
    with tempfile.TemporaryDirectory(prefix="ffrtmp-chaos-") as root:
        return await _run(settings, Path(root))


async def _run(settings: ChaosSettings, root: Path) -> ChaosReport:
    farm = ChaosFarm(
        FarmSettings(root=str(root), agents=settings.agents, slots=settings.slots,
                     run_s=settings.run_s)
    )  # fmt: skip
    await farm.start()
    try:
        subjects = Subjects(farm.settings.prefix)
        store = await JetStreamEventStore.connect(
            farm.url, subjects, ensure=True, lease_ttl_s=farm.settings.lease_ttl_s
        )
        async with store:
            farm.start_children()
            submitter, killer = await _load(farm, store, settings)
            report = await _settle(store, settings, len(submitter.jobs))
            farm.stop_children()
            report.violations += await check_projection(store.nc, farm.db, store.subjects.prefix)
            assigned = await _assignments(store)
    finally:
        farm.stop()
    return _report(settings, submitter, killer, report, assigned, farm.execution_logs())


async def _load(
    farm: ChaosFarm, store: JetStreamEventStore, settings: ChaosSettings
) -> tuple[Submitter, Killer]:
    """Submit and kill for the run's minutes; every process is up again at the end."""
    started = time.monotonic()
    submitter = Submitter(store, settings.rate)
    killer = Killer(farm, settings, started)
    seconds = settings.minutes * 60
    submitting = asyncio.create_task(submitter.run())
    try:
        await killer.run(seconds)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - started)))
    finally:
        submitting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await submitting
    return submitter, killer


async def _settle(store: JetStreamEventStore, settings: ChaosSettings, jobs: int) -> Report:
    """Check until every submitted job ended (or the settle time passed); the last report."""
    deadline = time.monotonic() + settings.settle_s
    while True:
        try:
            report = await check_store(store, CheckSettings(quiescent=True))
        except FfrtmpError:
            report = None  # the server is still recovering
        if report is not None and (
            (report.ok and report.jobs >= jobs) or time.monotonic() > deadline
        ):
            return report
        if report is None and time.monotonic() > deadline:
            raise FfrtmpError("the farm's log could not be read after the run")
        await asyncio.sleep(POLL_S)


async def _assignments(store: JetStreamEventStore) -> list[float]:
    """Every JobAssigned's time, sorted."""
    return sorted([e.at async for _, e in store.replay() if isinstance(e, JobAssigned)])


def _recovered(kill_at: float, assigned: list[float]) -> float | None:
    later = [at for at in assigned if at >= kill_at]
    return round(later[0] - kill_at, 2) if later else None


def _report(
    settings: ChaosSettings,
    submitter: Submitter,
    killer: Killer,
    report: Report,
    assigned: list[float],
    logs: list[Path],
) -> ChaosReport:
    kills = [
        msgspec.structs.replace(kill, recovery_s=_recovered(at, assigned))
        for kill, at in killer.kills
    ]
    executions = [entry for log in logs for entry in read_executions(log)]
    counted = collections.Counter((job, attempt) for job, attempt, _ in executions)
    twice = [f"{job} attempt {n} ran {c} times" for (job, n), c in counted.items() if c > 1]
    return ChaosReport(
        seed=settings.seed,
        minutes=settings.minutes,
        jobs=len(submitter.jobs),
        statuses=dict(report.statuses),
        events=report.events,
        kills={c.value: sum(k.component is c for k in kills) for c in Component},
        recovery={c.value: _recovery([k for k in kills if k.component is c]) for c in Component},
        executions=len(executions),
        ran_twice=twice,
        violations=[v.line() for v in report.violations],
        kill_log=kills,
    )


def _recovery(kills: list[Kill]) -> Recovery:
    times = [k.recovery_s for k in kills if k.recovery_s is not None]
    return Recovery(
        kills=len(kills),
        median_s=round(statistics.median(times), 2) if times else None,
        max_s=max(times) if times else None,
    )
