"""``ffrtmp nodes`` and ``ffrtmp events`` through typer's runner against a real farm."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from events.codec import Decoded
from events.enums import AgentStatus
from events.jetstream import JetStreamEventStore
from ffrtmp.cli import events_cmd, jobs, nodes
from ffrtmp.natsd import NatsServer
from tests.cli_support import Cli, dead_url, one_line_error
from tests.farm import GPU, Farm, scheduler, wait_until
from tests.integration.test_projector_service import fill, running

pytestmark = pytest.mark.anyio


@pytest.fixture
def cli(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Cli:
    """The CLI pointed at this test's server and prefix."""
    return Cli(nats_server.url, prefix, tmp_path)


async def test_nodes_list_describe_drain_clear_remove(farm: Farm, cli: Cli) -> None:
    """Nodes show hardware and load; drain stops placements, clear resumes, remove takes out."""
    async with scheduler(farm.store) as sched:
        await farm.agent("cpu-1")
        gpu = await farm.agent("gpu-1", caps=GPU)
        listed = await cli(nodes.app, "list", "-o", "json")
        rows = {row["id"]: row for row in json.loads(listed.stdout)}
        assert rows["gpu-1"]["gpus"] == ["0: RTX A2000"]
        assert rows["cpu-1"]["status"] == "online"
        described = await cli(nodes.app, "describe", "gpu")
        assert "RTX A2000" in described.stdout
        assert "h264_nvenc" in described.stdout
        drained = await cli(nodes.app, "drain", "cpu")
        assert "draining" in drained.stdout, drained.output
        after = {
            r["id"]: r for r in json.loads((await cli(nodes.app, "list", "-o", "json")).stdout)
        }
        assert after["cpu-1"]["status"] == "drained"
        assert "already draining" in (await cli(nodes.app, "drain", "cpu-1")).stdout
        assert "cleared" in (await cli(nodes.app, "clear", "cpu-1")).stdout
        one_line_error(await cli(nodes.app, "remove", "gpu-1"), "is alive", "--force")
        await gpu.stop(deregister=False)
        removed = await cli(nodes.app, "remove", "gpu-1", "--force")
        assert "removed" in removed.stdout, removed.output

        async def offline() -> bool:
            return sched.core.agents["gpu-1"].status is AgentStatus.OFFLINE

        await wait_until(offline, "gpu-1 to be offline")


class Reads:
    """Every read of the events stream through the client's store: its subject and its size."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[tuple[str, int]] = []
        messages, replay = JetStreamEventStore.messages, JetStreamEventStore.replay

        async def counted_messages(
            store: JetStreamEventStore, subject: str, start: int = 1
        ) -> list[tuple[int, str, bytes]]:
            found = await messages(store, subject, start)
            self.seen.append((subject, len(found)))
            return found

        async def counted_replay(
            store: JetStreamEventStore, from_seq: int = 1, *, subject: str | None = None
        ) -> AsyncIterator[tuple[int, Decoded]]:
            count = 0
            items = (
                replay(store, from_seq)
                if subject is None
                else replay(store, from_seq, subject=subject)
            )
            async for item in items:
                count += 1
                yield item
            self.seen.append((subject or store.subjects.all_events, count))

        monkeypatch.setattr(JetStreamEventStore, "messages", counted_messages)
        monkeypatch.setattr(JetStreamEventStore, "replay", counted_replay)


async def test_nodes_list_reads_only_agent_events(
    farm: Farm, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a projector answering, ``nodes list`` reads the agents' events and no job's."""
    last = await fill(farm.store, jobs=200)
    async with running(farm.store, tmp_path / "p.duckdb") as projector:

        async def caught_up() -> bool:
            return projector.checkpoint() >= last

        await wait_until(caught_up, "the projector to apply the log")
        reads = Reads(monkeypatch)
        listed = await cli(nodes.app, "list", "-o", "json")
    assert [row["id"] for row in json.loads(listed.stdout)] == ["agent-7"], listed.output
    assert reads.seen == [(farm.subjects.all_agent_events, 1)], f"of {last} events"


async def test_nodes_bad_input(farm: Farm, cli: Cli) -> None:
    """Unknown node, and NATS down, are one line each."""
    await farm.agent("cpu-1")
    one_line_error(await cli(nodes.app, "describe", "nope"), "no node id starts with 'nope'")
    one_line_error(await cli(nodes.app, "list", "--nats", dead_url()), "ffrtmp up")


async def test_events_tail_and_replay_with_filters(farm: Farm, cli: Cli) -> None:
    """Tail shows the last events, replay filters by job, type and agent; JSON is one per line."""
    async with scheduler(farm.store):
        await farm.agent("cpu-1")
        await cli(jobs.app, "submit", "--id", "ev-1", "--wait")
        await cli(jobs.app, "submit", "--id", "ev-2", "--wait")
    tail = await cli(events_cmd.app, "tail", "-n", "2")
    assert tail.exit_code == 0, tail.output
    assert len(tail.stdout.strip().splitlines()) == 2
    assert "JobCompleted ev-2" in tail.stdout
    replay = await cli(events_cmd.app, "replay", "--job", "ev-1", "-o", "json")
    lines = [json.loads(line) for line in replay.stdout.splitlines()]
    assert {line["event"]["job"] for line in lines} == {"ev-1"}
    assert lines[0]["type"] == "JobSubmitted"
    assert lines[-1]["writer"] == "cpu-1"
    completed = await cli(events_cmd.app, "replay", "--type", "JobCompleted", "-o", "json")
    assert [json.loads(x)["event"]["job"] for x in completed.stdout.splitlines()] == [
        "ev-1",
        "ev-2",
    ]
    by_agent = await cli(events_cmd.app, "replay", "--agent", "cpu-1", "-o", "json")
    types = {json.loads(x)["type"] for x in by_agent.stdout.splitlines()}
    assert "AgentRegistered" in types
    assert "JobSubmitted" not in types
    late = await cli(events_cmd.app, "replay", "--from-seq", "1000", "-o", "json")
    assert late.stdout == ""
    one_line_error(await cli(events_cmd.app, "replay", "--job", "zz"), "no job id")
    one_line_error(await cli(events_cmd.app, "tail", "--nats", dead_url()), "ffrtmp up")
