"""``ffrtmp jobs`` through typer's runner against a real nats-server, scheduler and sim agents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.logs import open_logs, store_log
from events.enums import FailureReason
from events.work import Dispatch
from ffrtmp.cli import jobs
from ffrtmp.natsd import NatsServer
from tests.cli_support import Cli, dead_url, one_line_error
from tests.farm import Farm, scheduler
from tests.simagent import Behaviour, Outcome

pytestmark = pytest.mark.anyio


def plan(dispatch: Dispatch) -> Behaviour:
    """Bad input fails as a user error; a 'hang' label holds its slot; the rest complete."""
    if dispatch.spec.input.endswith("missing.mp4"):
        return Behaviour(
            outcome=Outcome.FAIL,
            fail_reason=FailureReason.USER_ERROR,
            fail_message="missing.mp4: No such file or directory",
        )
    if dispatch.spec.labels.get("hang"):
        return Behaviour(outcome=Outcome.HANG, run_s=0.05)
    return Behaviour(run_s=0.05)


@pytest.fixture
def cli(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Cli:
    """The CLI pointed at this test's server and prefix."""
    return Cli(nats_server.url, prefix, tmp_path)


async def test_submit_wait_list_status_history(farm: Farm, cli: Cli) -> None:
    """A job submitted with --wait completes (exit 0) and list, status and history show it."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        done = await cli(jobs.app, "submit", "--scenario", "720p-h264", "--id", "ok-1", "--wait")
        assert done.exit_code == 0, done.output
        assert "job ok-1 completed" in done.output
        listed = await cli(jobs.app, "list", "-o", "json")
        (row,) = json.loads(listed.stdout)
        assert (row["id"], row["status"], row["agent"], row["scenario"]) == (
            "ok-1", "completed", "cpu-1", "720p-h264",
        )  # fmt: skip
        table = await cli(jobs.app, "list")
        assert "FAILURE REASON" in table.stdout
        assert "ok-1" in table.stdout
        status = await cli(jobs.app, "status", "ok", "-o", "json")
        assert json.loads(status.stdout)["job"]["status"] == "completed"
        history = await cli(jobs.app, "history", "ok-1", "-o", "json")
        entries = json.loads(history.stdout)
        writers = {(e["type"], e["writer"]) for e in entries}
        assert ("JobSubmitted", "sched") in writers
        assert ("JobCompleted", "cpu-1") in writers
        assert entries[0]["changes"] == "status new→queued"


async def test_bad_input_fails_with_exit_3_and_retry_runs_it_again(farm: Farm, cli: Cli) -> None:
    """A user error ends --wait with exit 3 and the reason; retry queues a new attempt."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        failed = await cli(
            jobs.app, "submit", "--input", "/in/missing.mp4", "--id", "bad-1", "--wait"
        )
        assert failed.exit_code == 3, failed.output
        assert "user_error: missing.mp4: No such file or directory" in failed.output
        listed = await cli(jobs.app, "list", "--state", "failed")
        assert "user_error" in listed.stdout
        retried = await cli(jobs.app, "retry", "bad-1")
        assert retried.exit_code == 0, retried.output
        state = await farm.wait_status("bad-1", "failed")
        assert state.attempt == 2
        again = await cli(jobs.app, "retry", "bad-1", "-o", "json")
        assert json.loads(again.stdout)["events"] == ["JobQueued"]


async def test_gpu_job_on_a_cpu_fleet_is_rejected_with_exit_4(farm: Farm, cli: Cli) -> None:
    """A NVENC job on CPU-only agents is rejected; --wait exits 4 and says why."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        rejected = await cli(
            jobs.app, "submit", "--scenario", "4K-nvenc", "--id", "gpu-1", "--wait"
        )
        assert rejected.exit_code == 4, rejected.output
        assert "capability_mismatch" in rejected.output
        status = await cli(jobs.app, "status", "gpu-1")
        assert "rejected" in status.stdout
        assert "NVIDIA GPU" in status.stdout


async def test_approval_and_refusals(farm: Farm, cli: Cli) -> None:
    """A job waiting for approval runs once approved; answering it again is refused (exit 1)."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        pending = await cli(jobs.app, "submit", "--approval", "--prompt", "ok?", "--id", "ap-1")
        assert "pending" in pending.stdout
        approved = await cli(jobs.app, "approve", "ap-1")
        assert approved.exit_code == 0, approved.output
        await farm.wait_status("ap-1", "completed")
        one_line_error(await cli(jobs.app, "respond", "ap-1", "--answer", "x"), "not awaiting")
        denied = await cli(jobs.app, "submit", "--approval", "--id", "ap-2")
        assert denied.exit_code == 0
        assert (await cli(jobs.app, "deny", "ap-2", "--answer", "no")).exit_code == 0
        assert (await farm.state("ap-2")).status == "canceled"


async def test_pause_resume_cancel_a_running_job(farm: Farm, cli: Cli) -> None:
    """Pause, resume and cancel go through the agent holding the job."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        await cli(jobs.app, "submit", "--label", "hang=1", "--id", "long-1")
        await farm.wait_status("long-1", "running")
        assert (await cli(jobs.app, "pause", "long-1")).exit_code == 0
        await farm.wait_status("long-1", "paused")
        assert (await cli(jobs.app, "resume", "long-1")).exit_code == 0
        await farm.wait_status("long-1", "running")
        assert (await cli(jobs.app, "cancel", "long-1")).exit_code == 0
        await farm.wait_status("long-1", "canceled")
        one_line_error(await cli(jobs.app, "pause", "long-1"), "only live jobs can be paused")


async def test_status_at_a_sequence_shows_the_job_as_it_was(farm: Farm, cli: Cli) -> None:
    """--at SEQ folds the job's events up to that sequence only."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        await cli(jobs.app, "submit", "--id", "tt-1", "--wait")
        loaded = await farm.store.load("tt-1")
        first = loaded.events[0][0]
        then = await cli(jobs.app, "status", "tt-1", "--at", str(first), "-o", "json")
        assert json.loads(then.stdout)["job"]["status"] == "queued"
        now = await cli(jobs.app, "status", "tt-1", "--at", "2099-01-01T00:00:00", "-o", "json")
        assert json.loads(now.stdout)["job"]["status"] == "completed"


async def test_unknown_and_ambiguous_ids(farm: Farm, cli: Cli) -> None:
    """An unknown id and an ambiguous prefix are one line each, listing the candidates."""
    await farm.submit("amb-1")
    await farm.submit("amb-2")
    async with scheduler(farm.store):
        await farm.wait_status("amb-2", "queued")
    one_line_error(await cli(jobs.app, "status", "zzz"), "no job id starts with 'zzz'")
    one_line_error(await cli(jobs.app, "cancel", "amb"), "matches 2: amb-1, amb-2")
    one_line_error(await cli(jobs.app, "history", "amb"), "matches 2")


async def test_invalid_input_is_one_line_and_sends_nothing(farm: Farm, cli: Cli) -> None:
    """A bad scenario, label or --since is refused before anything reaches the log."""
    one_line_error(await cli(jobs.app, "submit", "--scenario", "8K-mpeg2"), "scenario")
    one_line_error(await cli(jobs.app, "submit", "--label", "novalue"), "KEY=VALUE")
    one_line_error(await cli(jobs.app, "submit", "--dest", "ftp://x/y.mp4"), "ftp://")
    one_line_error(await cli(jobs.app, "list", "--since", "yesterday"), "--since")
    assert await farm.store.last_seq() == 0


async def test_nats_down_is_one_line_naming_the_url(cli: Cli) -> None:
    """With no server at the URL every command says so in one line and suggests ffrtmp up."""
    url = dead_url()
    for args in (["list"], ["status", "x"], ["submit"], ["cancel", "x"]):
        result = await cli(jobs.app, *args, "--nats", url)
        one_line_error(result, url, "ffrtmp up")


def test_every_jobs_command_has_an_example(cli: Cli) -> None:
    """--help of each command shows an Example line."""
    for name in ("submit", "list", "status", "history", "cancel", "pause", "resume", "retry",
                 "approve", "deny", "respond", "logs"):  # fmt: skip
        result = cli.invoke_sync(jobs.app, name, "--help")
        assert result.exit_code == 0
        assert "Example: ffrtmp jobs" in result.stdout, name


async def test_logs_show_an_attempts_ffmpeg_output(farm: Farm, cli: Cli) -> None:
    """The logs command prints the stored tail of an attempt; a missing one is one line."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        await cli(jobs.app, "submit", "--input", "/in/missing.mp4", "--id", "lg-1", "--wait")
    store = await open_logs(farm.js, farm.subjects)
    await store_log(store, "lg-1", 1, b"[in] /in/missing.mp4: No such file or directory\n")
    shown = await cli(jobs.app, "logs", "lg-1")
    assert shown.exit_code == 0, shown.output
    assert "No such file or directory" in shown.stdout
    one_line_error(await cli(jobs.app, "logs", "lg-1", "--attempt", "2"), "no log stored")


async def test_wait_gives_up_with_exit_5(farm: Farm, cli: Cli) -> None:
    """A job that cannot run yet (no agent) ends --wait with exit 5 after its timeout."""
    async with scheduler(farm.store):
        result = await cli(jobs.app, "submit", "--id", "w-1", "--wait", "--wait-timeout-s", "0.5")
    assert result.exit_code == 5, result.output
    assert "still queued" in result.stderr


async def test_a_second_submit_of_an_id_is_refused_in_one_line(farm: Farm, cli: Cli) -> None:
    """The decision read after the send still catches the refusal of a known id."""
    async with scheduler(farm.store):
        first = await cli(jobs.app, "submit", "--scenario", "720p-h264", "--id", "dup-1")
        assert first.exit_code == 0, first.output
        assert "job dup-1: queued" in first.stdout
        again = await cli(jobs.app, "submit", "--scenario", "720p-h264", "--id", "dup-1")
        one_line_error(again, "dup-1", "new id")


async def test_submit_with_no_scheduler_says_the_command_is_stored_and_waits(
    farm: Farm, cli: Cli
) -> None:
    """No scheduler: exit 0, the command is stored, and the line says nobody answered in time."""
    result = await cli(jobs.app, "submit", "--id", "nobody-1", "--decision-wait-s", "0.5")
    assert result.exit_code == 0, result.output
    assert "command stored; no scheduler answered within 0.5 s and none holds the lease" in (
        result.stdout
    )
    pending = await farm.js.stream_info(farm.subjects.commands_stream)
    assert pending.state.messages == 1


async def test_submit_wait_json_prints_the_submit_then_each_change_with_its_sequence(
    farm: Farm, cli: Cli
) -> None:
    """``--wait -o json``: the submit's document first, then states carrying real sequences."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1", behaviour=plan)
        done = await cli(jobs.app, "submit", "--id", "wj-1", "--wait", "-o", "json")
    assert done.exit_code == 0, done.output
    first, *changes = [json.loads(line) for line in done.stdout.splitlines()]
    assert (first["job"], first["command"], first["decided"]) == ("wj-1", "SubmitJob", True)
    assert changes[-1]["job"]["status"] == "completed"
    seqs = [line["seq"] for line in changes]
    assert all(seq > 0 for seq in seqs)
    assert seqs == sorted(seqs)
    loaded = await farm.store.load("wj-1")
    assert seqs[-1] == loaded.last_seq
