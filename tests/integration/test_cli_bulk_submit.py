"""``ffrtmp jobs submit --file``: many jobs through the CLI against a real server and scheduler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from events.commands import AgentCommandBase, OperatorCommandBase
from events.errors import StoreUnavailable
from ffrtmp.cli import jobs
from ffrtmp.client.conn import Conn
from ffrtmp.natsd import NatsServer
from tests.cli_support import Cli, one_line_error
from tests.farm import Farm, scheduler

pytestmark = pytest.mark.anyio

COUNT = 60


@pytest.fixture
def cli(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Cli:
    """The CLI pointed at this test's server and prefix."""
    return Cli(nats_server.url, prefix, tmp_path)


def _specs(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n")
    return str(path)


async def test_a_file_of_specs_submits_every_job_and_reports_decisions(
    farm: Farm, cli: Cli, tmp_path: Path
) -> None:
    """Every line becomes a job the scheduler accepted; the JSON summary counts them."""
    lines = [json.dumps({"id": f"bulk-{n}", "scenario": "480p-h264"}) for n in range(COUNT)]
    async with scheduler(farm.store):
        await farm.agent("cpu-1", slots=8)
        done = await cli(
            jobs.app, "submit", "--file", _specs(tmp_path / "jobs.jsonl", lines), "-o", "json"
        )
        assert done.exit_code == 0, done.output
        summary = json.loads(done.stdout)
        assert (summary["submitted"], summary["accepted"], summary["undecided"]) == (
            COUNT,
            COUNT,
            0,
        )
        assert summary["refused"] == []
        assert sorted(summary["jobs"]) == sorted(f"bulk-{n}" for n in range(COUNT))
        for n in (0, COUNT - 1):
            assert (await farm.state(f"bulk-{n}")).status != "new"


async def test_one_bad_line_submits_nothing(farm: Farm, cli: Cli, tmp_path: Path) -> None:
    """A file with an invalid line is refused whole, naming the line; no job is created."""
    lines = [
        json.dumps({"id": "fine-1", "scenario": "480p-h264"}),
        '{"id": "fine-2", "scenario": "8K-h264"}',
    ]
    async with scheduler(farm.store):
        done = await cli(jobs.app, "submit", "--file", _specs(tmp_path / "bad.jsonl", lines))
        assert done.exit_code == 1, done.output
        assert "line 2" in done.stderr
        assert "nothing was submitted" in done.stderr
        assert (await farm.state("fine-1")).status == "new"


async def test_a_resent_file_creates_no_second_job(farm: Farm, cli: Cli, tmp_path: Path) -> None:
    """Sending the same ids again is refused per line by the scheduler; each job exists once."""
    path = _specs(
        tmp_path / "again.jsonl",
        [json.dumps({"id": f"again-{n}", "scenario": "480p-h264"}) for n in range(3)],
    )
    async with scheduler(farm.store):
        await farm.agent("cpu-1")
        first = await cli(jobs.app, "submit", "--file", path)
        assert first.exit_code == 0, first.output
        assert "accepted 3" in first.stdout
        second = await cli(jobs.app, "submit", "--file", path, "-o", "json")
        assert second.exit_code == 1, second.output
        refused = json.loads(second.stdout)["refused"]
        assert [r["line"] for r in refused] == [1, 2, 3]
        assert all("new id" in r["reason"] for r in refused)


async def test_specs_from_standard_input(farm: Farm, cli: Cli) -> None:
    """`--file -` reads the specs from standard input."""
    text = (
        "\n".join(json.dumps({"id": f"stdin-{n}", "scenario": "480p-h264"}) for n in range(4))
        + "\n"
    )
    async with scheduler(farm.store):
        await farm.agent("cpu-1")
        done = await cli.with_input(text, jobs.app, "submit", "--file", "-")
        assert done.exit_code == 0, done.output
        assert "submitted 4 jobs" in done.stdout
        assert (await farm.state("stdin-3")).status != "new"


@pytest.mark.usefixtures("farm")  # the streams exist: the sends start, then fail
async def test_a_send_that_fails_stops_the_rest_and_says_how_far_it_got(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store failing mid-file is one line saying how many were stored and what is safe."""
    real_send = Conn.send
    calls = 0

    async def failing(self: Conn, command: OperatorCommandBase | AgentCommandBase) -> None:
        nonlocal calls
        calls += 1
        if calls > 5:
            raise StoreUnavailable(self.where.url, "the commands stream refused: test")
        await real_send(self, command)

    monkeypatch.setattr(Conn, "send", failing)
    lines = [json.dumps({"scenario": "480p-h264"}) for _ in range(20)]
    done = await cli(jobs.app, "submit", "--file", _specs(tmp_path / "cut.jsonl", lines))
    one_line_error(done, "of 20 jobs were stored before it", "safe to send again")
