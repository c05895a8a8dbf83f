"""The exporter's SQL over its DuckDB projection says what the pure fold of the log says."""

from __future__ import annotations

import msgspec
import pytest

from agent.scripted import Behaviour, Outcome
from events.agent_events import AgentDeregistered
from events.enums import FailureReason, JobStatus
from events.store import MemoryEventStore
from events.work import Dispatch
from ffrtmp.exporter.figures import LogFigures
from ffrtmp.exporter.projection import ProjectionView
from projections import Projector, catch_up
from tests.farm import Farm, scheduler
from tests.scrape import T0, Log, known_history
from tests.tally import Tally

pytestmark = pytest.mark.anyio
S = JobStatus


def plan(dispatch: Dispatch) -> Behaviour:
    """Jobs say by their name how they end: ok, runtime failure (retried), user error."""
    if dispatch.job.startswith("bad"):
        return Behaviour(outcome=Outcome.FAIL, run_s=0.02)
    if dispatch.job.startswith("usr"):
        return Behaviour(outcome=Outcome.FAIL, fail_reason=FailureReason.USER_ERROR, run_s=0.02)
    return Behaviour(run_s=0.02)


def rounded(figures: object) -> object:
    """The figures as plain data with floats to 0.1 ms: DuckDB keeps times in microseconds."""

    def walk(value: object) -> object:
        if isinstance(value, float):
            return round(value, 4)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [walk(item) for item in value]
        return value

    return walk(msgspec.to_builtins(figures))


def tally_of(items: list[tuple[int, object]]) -> Tally:
    """The pure fold of a replayed log."""
    tally = Tally()
    for seq, event in items:
        tally.apply(seq, event)  # type: ignore[arg-type]
    return tally


async def both_ways(store: MemoryEventStore) -> tuple[LogFigures, LogFigures, int]:
    """The store's log read by a projector and by the fold, and how many events it holds."""
    items = [item async for item in store.replay()]
    projector = Projector(":memory:")
    projector.apply(items)
    return ProjectionView(projector).figures(), tally_of(items).figures(), len(items)  # type: ignore[arg-type]


async def test_projection_figures_equal_the_fold_for_a_scheduled_farm(farm: Farm) -> None:
    """Jobs run, fail, retry and are rejected under the real scheduler; both readings agree."""
    await farm.agent("cpu-1", slots=2, behaviour=plan)
    jobs = {"ok-1": S.COMPLETED, "ok-2": S.COMPLETED, "bad-1": S.FAILED, "usr-1": S.FAILED}
    async with scheduler(farm.store):
        for job in jobs:
            await farm.submit(job, max_retries=1)
        await farm.submit("nv-1", scenario="1080p-h264-nvenc")
        for job, status in {**jobs, "nv-1": S.REJECTED}.items():
            await farm.wait_status(job, status)
    projector = Projector(":memory:", prefix=farm.subjects.prefix)
    await catch_up(projector, farm.store.nc)
    items = [item async for item in farm.store.replay()]
    expected = tally_of(items).figures()  # type: ignore[arg-type]
    got = ProjectionView(projector).figures()
    assert rounded(got) == rounded(expected)
    assert got.entered["retrying"] == 1
    assert got.failed_by_reason == {"runtime_error": 1, "user_error": 1}
    assert got.rejections == 1
    assert got.duration["default"].buckets[-1][1] == 2
    assert got.duration["live"].buckets[-1][1] == 0


async def test_projection_figures_equal_the_fold_for_the_known_history() -> None:
    """The hand-written history (a retry, a rejection, a lost agent) reads the same both ways."""
    store = MemoryEventStore()
    await known_history(Log(store))
    got, expected, count = await both_ways(store)
    assert rounded(got) == rounded(expected)
    assert got.position == count


async def test_projection_and_fold_agree_on_which_agents_have_gauges() -> None:
    """Departed, drained and present agents read the same both ways (a deregistration here)."""
    store = MemoryEventStore()
    log = Log(store)
    await known_history(log)
    await log.agent(AgentDeregistered(agent="a1", at=T0 + 20), agent="a1")
    got, expected, _ = await both_ways(store)
    assert rounded(got) == rounded(expected)
    assert (got.departed, got.present) == (frozenset({"a1"}), frozenset({"a2"}))
