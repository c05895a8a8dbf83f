"""``ffrtmp sql`` against a real projector process, and with ``--local``: output and errors."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.subjects import Subjects
from ffrtmp.cli import app
from ffrtmp.natsd import NatsServer, free_port
from projections import Projector
from projections.service import ask
from tests.farm import wait_until
from tests.integration.test_projector_service import fill
from tests.projection_support import ProjectorProcess

JOBS = 12
COUNT = "SELECT status, count(*) AS n FROM jobs GROUP BY status"


class Log:
    """Where this test's log is and its last sequence."""

    def __init__(self, url: str, prefix: str, last: int) -> None:
        self.url, self.prefix, self.last = url, prefix, last

    def args(self, *more: str) -> list[str]:
        return ["sql", *more, "--nats", self.url, "--prefix", self.prefix]


@pytest.fixture
def log(nats_server: NatsServer, prefix: str) -> Log:
    """``JOBS`` whole job histories on this test's prefix."""

    async def go() -> int:
        store = await JetStreamEventStore.connect(nats_server.url, Subjects(prefix), ensure=True)
        async with store:
            return await fill(store, jobs=JOBS)

    return Log(nats_server.url, prefix, asyncio.run(go()))


@pytest.fixture
def projector(log: Log, tmp_path: Path) -> Iterator[ProjectorProcess]:
    """A real ``ffrtmp projector run`` that has applied the whole log."""
    process = ProjectorProcess(log.url, log.prefix, tmp_path / "p.duckdb", tmp_path)
    process.start()

    async def caught_up() -> bool:
        store = await JetStreamEventStore.connect(log.url, Subjects(log.prefix))
        async with store:
            try:
                reply = await ask(store.nc, store.subjects, "SELECT 1", timeout_s=1)
            except FfrtmpError:
                return False
        return reply.checkpoint == log.last

    try:
        asyncio.run(wait_until(caught_up, "the projector to apply the log"))
        yield process
    finally:
        process.kill()


def invoke(*args: str) -> tuple[int, str, str]:
    """Run the CLI in this process: exit code, stdout, stderr."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.usefixtures("projector")
def test_json_output_has_columns_types_rows_and_checkpoint(log: Log) -> None:
    """``--output json`` prints one document with the rows and what they are."""
    code, out, _ = invoke(*log.args(COUNT, "--output", "json"))
    assert code == 0
    answer = json.loads(out)
    assert answer["columns"] == ["status", "n"]
    assert answer["types"] == ["VARCHAR", "BIGINT"]
    assert answer["rows"] == [["completed", JOBS]]
    assert (answer["truncated"], answer["checkpoint"]) == (False, log.last)


@pytest.mark.usefixtures("projector")
def test_csv_and_table_output(log: Log) -> None:
    """CSV has a header and a line per row; the table shows names, types and values."""
    query = "SELECT job, status, labels FROM jobs ORDER BY job LIMIT 3"
    code, out, _ = invoke(*log.args(query, "-o", "csv"))
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["job", "status", "labels"]
    assert [row[1] for row in rows[1:]] == ["completed"] * 3
    assert json.loads(rows[1][2]) == {"team": "video", "run": "bench"}
    code, out, _ = invoke(*log.args(COUNT))
    assert code == 0
    assert "status" in out
    assert "BIGINT" in out
    assert "completed" in out


@pytest.mark.usefixtures("projector")
def test_errors_are_one_line(log: Log) -> None:
    """A syntax error shows DuckDB's message and position; a write is refused; exit code 1."""
    code, out, err = invoke(*log.args("SELECT job FROM jobs WHER 1"))
    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith("error: Parser Error: syntax error")
    assert err.rstrip().endswith("(at line 1, column 27)")
    code, _, err = invoke(*log.args("DELETE FROM jobs"))
    assert code == 1
    assert err.count("\n") == 1
    assert "refused: DELETE statements" in err


@pytest.mark.usefixtures("projector")
def test_a_capped_result_says_so(log: Log) -> None:
    """Past ``--limit`` the rows stop and a line on stderr says there are more."""
    code, out, err = invoke(*log.args("SELECT job FROM jobs", "--limit", "2", "-o", "csv"))
    assert code == 0
    assert len(out.splitlines()) == 3
    assert "showing the first 2 rows" in err


@pytest.mark.usefixtures("projector")
def test_as_a_subprocess(log: Log) -> None:
    """The installed command line answers the same as the runner does."""
    command = [sys.executable, "-c", "from ffrtmp.cli import main; main()", *log.args(COUNT)]
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [*command, "-o", "csv"], capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode().splitlines() == ["status,n", f"completed,{JOBS}"]


def test_local_replays_the_log_without_a_projector(log: Log) -> None:
    """``--local`` folds the log here and answers the same."""
    code, out, _ = invoke(*log.args(COUNT, "--local", "-o", "json"))
    assert code == 0
    answer = json.loads(out)
    assert answer["rows"] == [["completed", JOBS]]
    assert answer["checkpoint"] == log.last


def test_no_projector_running_is_one_line(log: Log) -> None:
    """Without a projector the error names the subject and how to start one."""
    code, _, err = invoke(*log.args(COUNT))
    assert code == 1
    assert err.count("\n") == 1
    assert f"no projector answers on {log.prefix}.api.sql" in err
    assert "ffrtmp projector run" in err


def test_unreachable_nats_names_the_url(nats_binary: None) -> None:
    """No server at the URL: one line naming it and suggesting ``ffrtmp up``."""
    del nats_binary
    url = f"nats://127.0.0.1:{free_port()}"
    code, _, err = invoke("sql", "SELECT 1", "--nats", url)
    assert code == 1
    assert err.count("\n") == 1
    assert url in err
    assert "ffrtmp up" in err


def test_projections_rebuild_reports_events_per_second(log: Log, tmp_path: Path) -> None:
    """``ffrtmp projections rebuild`` folds the whole log into the file and says how fast."""
    db = tmp_path / "farm.duckdb"
    args = ["--db", str(db), "--nats", log.url, "--prefix", log.prefix]
    for _ in range(2):  # the second run starts from scratch again: same rows, no doubles
        code, out, _ = invoke("projections", "rebuild", *args)
        assert code == 0
        assert out.startswith(f"rebuilt {db}: {log.last:,} events in ")
        assert "events/s); checkpoint" in out
    projector = Projector(db, log.prefix)
    try:
        assert projector.checkpoint() == log.last
        assert projector.query("SELECT count(*) FROM jobs").rows == [[JOBS]]
    finally:
        projector.close()


def _jobs_list(log: Log, *more: str) -> list[dict[str, object]]:
    code, out, err = invoke(
        "jobs", "list", *more, "-o", "json", "--nats", log.url, "--prefix", log.prefix
    )
    assert code == 0, err
    rows: list[dict[str, object]] = json.loads(out)
    return rows


LIST_FILTERS: tuple[list[str], ...] = (
    [],
    ["--limit", "5"],
    ["--state", "completed"],
    ["--state", "failed"],
    ["--agent", "agent", "--since", "2026-01-01T00:00:00+00:00", "--limit", "0"],
)


@pytest.mark.usefixtures("projector")
def test_jobs_list_asks_the_projector_and_agrees_with_the_fold(log: Log) -> None:
    """``jobs list`` answers from a projector with the rows ``--local`` folds, filters too."""
    for filters in LIST_FILTERS:
        asked, folded = _jobs_list(log, *filters), _jobs_list(log, "--local", *filters)
        assert [r["id"] for r in asked] == [r["id"] for r in folded], filters
        for a, f in zip(asked, folded, strict=True):
            assert a == {**f, "submitted_at": a["submitted_at"], "finished_at": a["finished_at"]}
            assert a["submitted_at"] == pytest.approx(f["submitted_at"], abs=1e-5)
            assert a["finished_at"] == pytest.approx(f["finished_at"], abs=1e-5)
    assert len(_jobs_list(log)) == min(JOBS, 50)
    assert _jobs_list(log, "--state", "failed") == []
    code, out, _ = invoke("jobs", "list", "--nats", log.url, "--prefix", log.prefix)
    assert code == 0
    assert f"{JOBS} of {JOBS} jobs (from projector at seq {log.last})" in out


def test_jobs_list_folds_the_log_when_no_projector_answers(log: Log) -> None:
    """With no projector on the prefix the listing is folded here, and says so."""
    code, out, err = invoke("jobs", "list", "--nats", log.url, "--prefix", log.prefix)
    assert code == 0, err
    assert f"{JOBS} of {JOBS} jobs (from the log, folded here)" in out


def _counts_line(log: Log, *more: str) -> str:
    code, out, err = invoke("jobs", "list", *more, "--nats", log.url, "--prefix", log.prefix)
    assert code == 0, err
    (line,) = [ln for ln in out.splitlines() if " jobs" in ln and "(from " in ln]
    return line.split(" (from ")[0].strip()


@pytest.mark.usefixtures("projector")
def test_a_filtered_page_counts_the_matches_not_the_log(log: Log) -> None:
    """``N of M jobs``: M is what the filter selects over every page, from either source."""
    cases = {
        ("--limit", "5"): f"5 of {JOBS} jobs",  # counted before the page is cut
        ("--state", "completed", "--limit", "3"): f"3 of {JOBS} jobs",
        ("--state", "failed"): f"0 of 0 jobs matching, {JOBS} in all",  # an empty page
    }
    for filters, expected in cases.items():
        assert _counts_line(log, *filters) == expected, filters
        assert _counts_line(log, "--local", *filters) == expected, filters
