"""What README.md and docs/*.md say to run, run as written against a real farm.

One ``ffrtmp up`` (free ports, a temporary data directory, one agent, the default prefix) for
the module. The docs' Python example of docs/api.md runs with only its NATS URL pointed at this
farm and must see its job complete and the SQL service answer; every statement of every SQL
block, and each documented read-only command (``ffrtmp sql …``, ``jobs list``, ``nodes list``,
``events dead-letters``)
that names no other farm (no ``--nats``), runs through ``bash`` exactly as written, in a scratch
directory, with ``FFRTMP_NATS_URL`` naming the farm (the environment the docs document).
Commands that start long-running processes, follow forever, or need ids, hosts or hardware
this machine lacks are checked by ``tests/unit/test_docs_commands.py`` instead (they parse).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_nats_server
from tests.docs_blocks import Block, blocks, ffrtmp_argv, quoted, shell_commands, sql_statements
from tests.upfarm import Up, running

RUNNABLE = {("sql",), ("jobs", "list"), ("nodes", "list"), ("events", "dead-letters")}
"""Read-only commands that need nothing but a farm: run for real wherever the docs show them."""
DOCS_URL = "nats://127.0.0.1:4222"


class Farm(Up):
    """``ffrtmp up`` on free ports in ``root``, and ``bash`` in the environment that reaches it."""

    def bash(self, line: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
        """``line`` through bash, in the scratch directory, with the farm's environment."""
        return subprocess.run(  # noqa: S603 -- the docs' own lines
            ["bash", "-c", line],  # noqa: S607 -- bash on PATH, as a reader runs it
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout_s,
            check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    """The farm, until the module ends."""
    with running(lambda: Farm(tmp_path_factory.mktemp("docs"))) as started:
        yield started


def unskipped(lang: str) -> list[Block]:
    """The docs' blocks in ``lang`` that are not marked as skipped."""
    return [block for block in blocks() if block.lang == lang and not block.skip]


def runnable_lines() -> list[tuple[Block, str]]:
    """Each documented read-only command line that names no other farm, as written."""
    found: dict[str, Block] = {}
    for block in unskipped("bash"):
        for line in block.body.splitlines():
            commands = shell_commands(Block(path=block.path, line=0, lang="bash", body=line))
            args = [ffrtmp_argv(argv) for argv in commands]
            ours = [a for a in args if a is not None]
            if ours and len(ours) == 1 and _runs_here(ours[0]):
                found.setdefault(line.split("  #", 1)[0].strip(), block)
    return [(block, line) for line, block in found.items()]


def _runs_here(args: list[str]) -> bool:
    path = tuple(a for a in args[:2] if not a.startswith("-"))
    return any(path[: len(p)] == p for p in RUNNABLE) and "--nats" not in args


@pytest.mark.timeout(300)
def test_the_api_python_example_submits_follows_and_asks_sql(farm: Farm) -> None:
    """docs/api.md's example, pointed at this farm, sees its job complete and SQL answer 42."""
    (example,) = [b for b in unskipped("python") if b.path == "docs/api.md"]
    assert DOCS_URL in example.body
    script = farm.root / "example.py"
    script.write_text(example.body.replace(DOCS_URL, farm.url))
    done = subprocess.run(  # noqa: S603 -- the docs' example
        [sys.executable, str(script)], cwd=farm.root, capture_output=True, text=True,
        timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "JobCompleted" in done.stdout, done.stdout
    assert "{'result': {'columns': ['answer']" in done.stdout, done.stdout
    assert "'rows': [[42]]" in done.stdout, done.stdout


@pytest.mark.timeout(300)
def test_the_http_curl_flow_runs_as_written(farm: Farm) -> None:
    """docs/http.md's curl lines, in order, against this farm's API: each exits 0 (curl -f)."""
    (block,) = [b for b in unskipped("bash") if b.path == "docs/http.md" and "curl " in b.body]
    lines = [line for line in block.body.splitlines() if line.startswith("curl ")]
    assert len(lines) >= 8
    here = f"127.0.0.1:{farm.api_port}"
    for line in lines:
        assert "127.0.0.1:8080" in line, line
        done = farm.bash(f"export TOKEN=docs; {line.replace('127.0.0.1:8080', here)}", 120)
        assert done.returncode == 0, f"{block.where}: {line}\n{done.stdout}{done.stderr}"
    answer = farm.bash(f"curl -fsS http://{here}/api/v1/jobs/docs-http-2")
    assert '"approval_required":true' in answer.stdout
    assert '"status":"pending"' not in answer.stdout  # answered: it ran


@pytest.mark.parametrize(
    ("where", "statement"),
    [(b.where, s) for b in unskipped("sql") for s in sql_statements(b.body)],
)
def test_every_sql_example_runs_through_ffrtmp_sql(farm: Farm, where: str, statement: str) -> None:
    """Each statement of a SQL block is answered by the farm's projector, no error."""
    done = farm.bash(quoted(["ffrtmp", "sql", statement]))
    assert done.returncode == 0, f"{where}: {statement}\n{done.stderr}"


@pytest.mark.parametrize(("block", "line"), runnable_lines(), ids=lambda x: str(x)[:60])
def test_documented_read_commands_run_as_written(farm: Farm, block: Block, line: str) -> None:
    """``ffrtmp sql …``, ``jobs/nodes list``, ``events dead-letters`` exit 0 as written."""
    done = farm.bash(line)
    assert done.returncode == 0, f"{block.where}: `{line}`\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr


def test_the_docs_have_lines_to_run() -> None:
    """The selection finds the README's SQL and listing lines (a broken selector runs nothing)."""
    lines = [line for _, line in runnable_lines()]
    assert any(line.startswith("ffrtmp sql") for line in lines), lines
    assert any("jobs list" in line for line in lines), lines
    assert any("events dead-letters" in line for line in lines), lines


@pytest.mark.timeout(120)
def test_the_cluster_python_example_starts_and_stops_a_loopback_cluster(tmp_path: Path) -> None:
    """docs/cluster.md's Python example, run as written, prints the seed list of three nodes."""
    require_nats_server()
    (example,) = [b for b in unskipped("python") if b.path == "docs/cluster.md"]
    script = tmp_path / "cluster.py"
    script.write_text(example.body)
    done = subprocess.run(  # noqa: S603 -- the docs' example
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("nats://") == 3, done.stdout
