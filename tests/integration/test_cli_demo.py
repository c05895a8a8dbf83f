"""``ffrtmp demo`` and ``ffrtmp top`` through typer's runner against a real nats-server.

The scheduler is the real one; the agents are simulated (the real FFmpeg run of the demo is in
test_cli_up.py), so the whole mix is decided and watched in about a second, and the farm's
absence or half-presence is checked to be one line each.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.enums import FailureReason
from events.jetstream import JetStreamEventStore
from events.work import Dispatch
from ffrtmp.cli import app
from ffrtmp.cli.demo import MISSING_INPUT
from ffrtmp.natsd import NatsServer
from tests.cli_support import Cli, dead_url, one_line_error
from tests.farm import Farm, scheduler
from tests.simagent import Behaviour, Outcome

pytestmark = pytest.mark.anyio


def plan(dispatch: Dispatch) -> Behaviour:
    """A missing input fails as FFmpeg's agent would say; everything else completes."""
    if dispatch.spec.input == MISSING_INPUT:
        return Behaviour(
            outcome=Outcome.FAIL,
            fail_reason=FailureReason.USER_ERROR,
            fail_message=f"input file {MISSING_INPUT} does not exist on this agent",
        )
    return Behaviour(run_s=0.05)


@pytest.fixture
def cli(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Cli:
    """The CLI pointed at this test's server and prefix."""
    return Cli(nats_server.url, prefix, tmp_path)


async def test_the_demo_mix_ends_as_promised(farm: Farm, cli: Cli) -> None:
    """NVENC rejected on CPU agents, missing input failed, approval approved, the rest done."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        await farm.agent("cpu-2", behaviour=plan)
        result = await cli(app, "demo", "--seconds", "1", "--output", "json")
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout)
        top = await cli(app, "top", "--once")
        frame = json.loads((await cli(app, "top", "--once", "--output", "json")).stdout)
    jobs = {job["name"]: job for job in summary["jobs"]}
    assert summary["finished"]
    assert summary["counts"] == {"completed": 7, "failed": 1, "rejected": 1}
    assert jobs["gpu"]["reason"].startswith("capability_mismatch")
    assert jobs["bad-input"]["reason"].startswith("user_error: input file")
    assert jobs["approval"]["status"] == "completed"
    assert all(j["agent"] in {"cpu-1", "cpu-2"} for n, j in jobs.items() if n != "gpu")
    assert top.exit_code == 0, top.output
    for needle in ("Queues", "cpu-1", "cpu-2", "Recent failures", jobs["bad-input"]["id"]):
        assert needle in top.stdout
    # newest first: the GPU job was rejected on submission, before the bad input was run
    assert [f["id"] for f in frame["failures"]] == [jobs["bad-input"]["id"], jobs["gpu"]["id"]]
    assert sum(q["completed"] for q in frame["queues"]) == 7


async def test_the_demo_for_people_ends_with_the_why_commands(farm: Farm, cli: Cli) -> None:
    """The table, the summary line and the commands naming the failed job, but no ``jobs logs``.

    Its simulated attempt kept no log, so there is nothing for ``jobs logs`` to show.
    """
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        result = await cli(app, "demo", "--seconds", "1")
    assert result.exit_code == 0, result.output
    assert "9 jobs in" in result.stdout
    assert "1 failed (user_error)" in result.stdout
    for verb in ("status", "history"):
        assert f"ffrtmp jobs {verb} " in result.stdout
    assert "ffrtmp jobs logs" not in result.stdout


async def test_demo_without_a_scheduler_or_agents_is_one_line(farm: Farm, cli: Cli) -> None:
    """No scheduler leading, or no agent online: one line saying to run ffrtmp up; nothing sent."""
    one_line_error(await cli(app, "demo"), "no scheduler leads", "ffrtmp up")
    async with scheduler(farm.store):
        one_line_error(await cli(app, "demo"), "no agent is online", "ffrtmp up")
    assert await farm.store.last_seq() == 0


async def test_demo_and_top_with_nats_down_are_one_line(cli: Cli) -> None:
    """Nothing at the URL: one line naming it and suggesting ffrtmp up."""
    url = dead_url()
    for args in (["demo"], ["top", "--once"]):
        one_line_error(await cli(app, *args, "--nats", url), url, "ffrtmp up")


async def test_top_on_an_empty_farm_says_so(jetstream_store: JetStreamEventStore, cli: Cli) -> None:
    """A farm with nothing yet draws empty sections that say so."""
    assert await jetstream_store.last_seq() == 0
    result = await cli(app, "top", "--once")
    assert result.exit_code == 0, result.output
    for needle in ("no agents registered yet", "nothing running", "no failures"):
        assert needle in result.stdout


def test_up_demo_and_top_have_examples(cli: Cli) -> None:
    """--help of each shows an Example line."""
    for name in ("up", "demo", "top"):
        result = cli.invoke_sync(app, name, "--help")
        assert result.exit_code == 0, result.output
        assert "Example: ffrtmp" in result.stdout
