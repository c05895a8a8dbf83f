"""Dead letters an operator can see: stored in their stream, counted by the exporter, listed.

A junk command and junk work land in the dead-letter stream with their kind and reason; the
real exporter's endpoint counts them by source and kind; ``ffrtmp events dead-letters`` lists
them and ``ffrtmp check`` counts them. Hostile letters (binary, a payload at the server's limit,
headers that are not UTF-8 or that look like markup) are stored and listed without breaking the
lister, and a farm set up before the stream existed gets one line.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from events.deadletter import AGENT_SOURCE, CMD_SOURCE, HEADER_ROOM, SIZE_HEADER, Aside
from ffrtmp.cli import app, events_cmd
from ffrtmp.client.deadletters import bounds, latest
from ffrtmp.natsd import NatsServer
from tests.cli_support import Cli, one_line_error
from tests.farm import Farm, scheduler, wait_until
from tests.scrape import Samples, running, scrape_when, value

pytestmark = pytest.mark.anyio


@pytest.fixture
def cli(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Cli:
    """The CLI pointed at this test's server and prefix."""
    return Cli(nats_server.url, prefix, tmp_path)


async def _stored(farm: Farm, count: int) -> None:
    async def enough() -> bool:
        known = await bounds(farm.store.nc, farm.subjects)
        return known is not None and known.count >= count

    await wait_until(enough, f"{count} dead letters stored")


async def test_junk_command_and_work_are_stored_counted_and_listed(farm: Farm, cli: Cli) -> None:
    """A junk command and junk work are stored with kind and reason, scraped, and listed."""
    await farm.agent("a1")
    async with scheduler(farm.store):
        await farm.js.publish(farm.subjects.command("submit"), b"\xff not json")
        await _stored(farm, 1)
        await farm.js.publish(farm.subjects.work("a1"), b"junk work")
        await _stored(farm, 2)
    found = {letter.source: letter for letter in await latest(farm.client, 10)}
    assert set(found) == {CMD_SOURCE, AGENT_SOURCE}
    assert found[CMD_SOURCE].kind == found[AGENT_SOURCE].kind == Aside.MALFORMED
    assert found[CMD_SOURCE].origin == farm.subjects.command("submit")
    assert found[AGENT_SOURCE].origin == farm.subjects.work("a1")
    assert found[AGENT_SOURCE].error
    assert found[AGENT_SOURCE].head == "junk work"

    async with running(farm.store) as exporter:

        def counted(samples: Samples) -> bool:
            return all(
                value(samples, "ffrtmp_dead_letters", source=source, kind="malformed") == 1
                for source in (CMD_SOURCE, AGENT_SOURCE)
            ) and (  # a kind with none is a 0, so a panel or an alert sees "none", not "no data"
                value(samples, "ffrtmp_dead_letters", source=CMD_SOURCE, kind="conflicting") == 0
            )

        await scrape_when(exporter.port, counted, "both dead letters on the exporter")

    listed = await cli(events_cmd.app, "dead-letters", "-n", "10", "--output", "json")
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(row["source"], row["kind"]) for row in rows] == [
        (CMD_SOURCE, "malformed"),
        (AGENT_SOURCE, "malformed"),
    ]
    assert rows[0]["seq"] < rows[1]["seq"]
    assert all(row["at"] > 0 for row in rows)
    table = await cli(events_cmd.app, "dead-letters", "-n", "1")
    assert table.exit_code == 0, table.output
    assert "junk work" in table.stdout
    assert "not json" not in table.stdout  # -n 1: only the latest
    assert "1 dead letters" in table.stdout
    checked = await cli(app, "check", "--output", "json")
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["dead_letters"] == 2
    summary = await cli(app, "check")
    assert ", 2 dead letters: 0 violations" in summary.stderr, summary.output


async def _raw_publish(server: NatsServer, subject: str, headers: bytes, data: bytes) -> None:
    """Publish with header bytes exactly as given (nats-py would encode them as UTF-8)."""
    host, port = server.url.removeprefix("nats://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        await reader.readline()  # INFO
        writer.write(b'CONNECT {"verbose":false,"pedantic":false,"headers":true}\r\n')
        block = b"NATS/1.0\r\n" + headers + b"\r\n"
        head = f"HPUB {subject} {len(block)} {len(block) + len(data)}\r\n".encode()
        writer.write(head + block + data + b"\r\nPING\r\n")
        await writer.drain()
        assert (await reader.readline()).startswith(b"PONG")
    finally:
        writer.close()


async def test_hostile_letters_are_stored_and_listed(
    farm: Farm, cli: Cli, nats_server: NatsServer
) -> None:
    """Binary, limit-sized, non-UTF-8 and markup-like letters are listed; a huge one is cut."""
    nc = farm.store.nc
    near_limit = bytes(range(256)) * ((nc.max_payload - 16) // 256)
    async with scheduler(farm.store):
        await farm.js.publish(farm.subjects.command("submit"), near_limit)
        await _stored(farm, 1)
    await nc.publish(farm.subjects.dead_letter(CMD_SOURCE), b"\x00\xff\xfe binary")
    await _stored(farm, 2)  # in this order: the raw publish below is another connection
    bad = b"Ffrtmp-Kind: \xff\xfe\r\nFfrtmp-Error: caf\xe9 [/bold] [red]x\r\nbroken line\r\n"
    await _raw_publish(nats_server, farm.subjects.dead_letter("agent-a9"), bad, b"[/] \x80")
    await _stored(farm, 3)

    letters = await latest(farm.client, 10)
    cut, binary, hostile = letters
    assert (cut.kind, cut.size, cut.head.startswith("\\x00\\x01")) == (
        Aside.MALFORMED,
        len(near_limit),
        True,
    )
    assert (binary.kind, binary.error, binary.head) == ("?", "", "\\x00\\xff\\xfe binary")
    assert hostile.source == AGENT_SOURCE
    assert "caf" in hostile.error
    assert "[/bold]" in hostile.error
    stored = await farm.js.get_msg(farm.subjects.dead_letter_stream, cut.seq)
    assert len(stored.data or b"") == nc.max_payload - HEADER_ROOM
    assert (stored.headers or {})[SIZE_HEADER] == str(len(near_limit))

    listed = await cli(events_cmd.app, "dead-letters", "--output", "json")
    assert listed.exit_code == 0, listed.output
    assert len([json.loads(line) for line in listed.stdout.splitlines()]) == 3
    table = await cli(events_cmd.app, "dead-letters")
    assert table.exit_code == 0, table.output
    assert "[/bold]" in table.stdout  # shown as text, not read as markup
    assert "3 dead letters" in table.stdout


async def test_a_farm_without_the_stream_gets_one_line(farm: Farm, cli: Cli) -> None:
    """On a farm set up before dead letters were stored, the lister says so and how to fix it."""
    await farm.js.delete_stream(farm.subjects.dead_letter_stream)
    result = await cli(events_cmd.app, "dead-letters")
    one_line_error(result, farm.subjects.dead_letter_stream, "ffrtmp streams create")
    checked = await cli(app, "check", "--output", "json")
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout)["dead_letters"] is None
    async with running(farm.store) as exporter:
        samples = await scrape_when(exporter.port, lambda _: True, "a scrape")
    assert not [name for name, _ in samples if name == "ffrtmp_dead_letters"]
