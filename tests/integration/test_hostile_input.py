"""Hostile commands and ids on the real wire: each refused or set aside, none held, none fatal.

What ``docs/api.md`` promises (ids of 1-64 of ``a-z0-9_-``, unknown spec fields are an error,
bounded strings, version 1 messages) holds for a raw NATS client exactly as for the CLI. Each
test sends the inputs a security review sent, then checks the farm still completes a job and
the log still keeps every invariant.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.aio.msg import Msg

from events.codec import encode
from events.commands import CancelJob, RespondToJob, SubmitJob
from events.errors import FfrtmpError, StoreUnavailable
from events.jetstream import JetStreamEventStore
from events.job_events import CommandRefused, JobQueued
from events.spec import JobSpec
from events.store import Append
from events.subjects import Subjects
from events.work import Dispatch
from ffrtmp.check.read import check_store
from ffrtmp.cli import jobs
from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.service import Scheduler
from ffrtmp.scheduler.session import run_connected
from projections.runner import Projector
from projections.service import ask, serve, sql_subject
from tests.cli_support import Cli, one_line_error
from tests.farm import FAST, Farm, scheduler, wait_until

pytestmark = pytest.mark.anyio
SPEC = JobSpec(scenario="720p-h264")
NESTED = b"[" * 50_000 + b"]" * 50_000


def _submit(job: str) -> bytes:
    return _raw(SubmitJob(id=f"s-{len(job)}", job=job, at=1.0, spec=SPEC))


def _raw(command: Any, **changes: Any) -> bytes:
    """A command's JSON with fields changed as a raw client could write it."""
    body = msgspec.json.decode(encode(command))
    for key, value in changes.items():
        if key == "spec_extra":
            body["spec"].update(value)
        else:
            body[key] = value
    return msgspec.json.encode(body)


SET_ASIDE: list[tuple[str, str, bytes, str]] = [
    ("cancel", "a dotted job id", _raw(CancelJob(id="c1", job="x", at=1.0), job="a.b"), "job id"),
    ("submit", "an uppercase id", _raw(SubmitJob(id="c2", job="UP", at=1.0, spec=SPEC)), "job id"),
    ("submit", "a 65-char id", _raw(SubmitJob(id="c3", job="a" * 65, at=1.0, spec=SPEC)), "job id"),
    ("submit", "a 5,000-char id", _submit("b" * 5000), "job id"),
    ("submit", "an id with a newline", _submit("x\n"), "job id"),
    ("cancel", "version 2", _raw(CancelJob(id="c6", job="v2job", at=1.0), v=2), "v2"),
    (
        "submit",
        "an unknown spec field",
        _raw(SubmitJob(id="c7", job="unk", at=1.0, spec=SPEC), spec_extra={"gpus": 8}),
        "spec.gpus: unknown field",
    ),
    ("cancel", "a 5,000-char 'by'", _raw(CancelJob(id="c8", job="x", at=1.0, by="e" * 5000)), "by"),
    ("cancel", "a 5,000-char command id", _raw(CancelJob(id="i" * 5000, job="x", at=1.0)), "id"),
    (
        "cancel",
        "JSON nested 50,000 deep",
        b'{"type":"CancelJob","id":"c9","job":"x","at":1,"x":' + NESTED + b"}",
        "recursion",
    ),
    (
        "respond",
        "a 900 KB answer",
        _raw(RespondToJob(id="c10", job="x", at=1.0, approve=True, answer="a" * 900_000)),
        "answer",
    ),
]  # fmt: skip


async def test_bad_raw_commands_are_set_aside_with_their_reason_never_held(farm: Farm) -> None:
    """Every bad id, version, field or size is dead-lettered naming why, never held.

    Nothing counts as an outage, the connection stays up, and a later job completes.
    """
    dead: list[tuple[str, str]] = []

    async def on_dead(msg: Msg) -> None:
        dead.append(((msg.headers or {}).get("Ffrtmp-Error", ""), msg.data[:20].decode("latin1")))

    await farm.store.nc.subscribe(farm.subjects.dead_letter("cmd"), cb=on_dead)
    await farm.agent("a1")
    async with scheduler(farm.store) as sched:
        for verb, _, data, _ in SET_ASIDE:
            await farm.js.publish(farm.subjects.command(verb), data)

        async def all_set_aside() -> bool:
            return len(dead) >= len(SET_ASIDE)

        await wait_until(all_set_aside, "every bad command on the dead-letter subject")
        reasons = [reason for reason, _ in dead]
        for _, what, _, why in SET_ASIDE:
            assert any(why in reason.lower() or why in reason for reason in reasons), (
                what,
                reasons,
            )
        assert sched.stats.malformed == len(SET_ASIDE)
        assert (sched.stats.outages, sched.stats.commands) == (0, 0)
        assert not farm.store.nc.is_closed
        await farm.submit("after")
        await farm.wait_status("after", "completed")
    (refusal,) = await farm.history("unk")  # a valid job id: its refusal is on its subject
    assert isinstance(refusal, CommandRefused)
    assert "spec.gpus: unknown field" in refusal.reason
    report = await check_store(farm.store)
    assert report.violations == []


@pytest.mark.parametrize(
    "spec",
    [
        {"scenario": "720p-h264", "preset": "p" * 100_000},
        {"scenario": "720p-h264", "approval_required": True, "approval_prompt": "x" * 900_000},
        {"scenario": "720p-h264", "labels": {"team": "v" * 10_000}},
        {"scenario": "720p-h264", "output": "/tmp/" + "o" * 10_000 + ".mp4"},  # noqa: S108
    ],
)
async def test_an_oversized_spec_over_raw_nats_is_refused(farm: Farm, spec: dict[str, Any]) -> None:
    """A spec string past its limit sent raw: one short CommandRefused, no job, the farm goes on."""
    body = {
        "type": "SubmitJob",
        "v": 1,
        "id": "big1",
        "job": "big",
        "at": time.time(),
        "spec": spec,
    }
    await farm.agent("a1")
    async with scheduler(farm.store):
        await farm.js.publish(farm.subjects.command("submit"), msgspec.json.encode(body))
        await farm.submit("after")
        await farm.wait_status("after", "completed")

        async def refused() -> bool:
            return bool(await farm.history("big"))

        await wait_until(refused, "the oversized submit's refusal")
    (event,) = await farm.history("big")
    assert isinstance(event, CommandRefused)
    assert event.reason.startswith("invalid spec: ")
    assert len(event.reason) < 400
    assert (await farm.state("big")).status == "new"


@pytest.fixture
def cli(nats_server: NatsServer, prefix: str, tmp_path: Path) -> Cli:
    """The CLI pointed at this test's server and prefix."""
    return Cli(nats_server.url, prefix, tmp_path)


async def test_the_cli_refuses_what_the_scheduler_would_set_aside(
    farm: Farm, cli: Cli, tmp_path: Path
) -> None:
    r"""The CLI refuses in one line (exit 1) what a raw client would have set aside.

    ``--id $'x\n'``, a dotted id, a 100 KB preset, a deeply nested spec file, a 5,000-character
    reason: nothing is sent, and a good submit after them completes.
    """
    nested = tmp_path / "nested.json"
    nested.write_bytes(
        b'{"scenario": "720p-h264", "labels": ' + b"[" * 20_000 + b"]" * 20_000 + b"}"
    )
    bad = [
        (("submit", "--id", "x\n"), "job id"),
        (("submit", "--id", "A.B"), "job id"),
        (("submit", "--preset", "p" * 100_000), "preset"),
        (("submit", "--spec", str(nested)), "nested deeper than 8"),
    ]
    await farm.agent("a1")
    async with scheduler(farm.store) as sched:
        for args, needle in bad:
            result = await cli(jobs.app, *args)
            one_line_error(result, needle)
        done = await cli(jobs.app, "submit", "--id", "fine", "--wait")
        assert done.exit_code == 0, done.output
        denied = await cli(jobs.app, "deny", "fine", "--answer", "r" * 5000)
        one_line_error(denied, "answer: 5000 characters; at most 1024")
        assert sched.stats.malformed == 0  # nothing bad reached the wire
    listed = await cli(jobs.app, "list", "-o", "json")
    assert [row["id"] for row in json.loads(listed.stdout)] == ["fine"]


async def test_an_agent_sets_aside_a_dispatch_it_must_not_run(farm: Farm) -> None:
    """Work a raw client publishes with a bad job id, spec or version is dead-lettered.

    The agent goes on running real work.
    """
    agent = await farm.agent("a1")
    forged = Dispatch(job="j", attempt=1, spec=SPEC, budget_s=10.0, after_seq=1, at=1.0)
    bad = [
        _raw(forged, job="a.b"),
        _raw(forged, spec_extra={"preset": "p" * 5000}),
        _raw(forged, v=2),
    ]
    for data in bad:
        await farm.js.publish(farm.subjects.work("a1"), data)

    async def set_aside() -> bool:
        return agent.stats.malformed >= len(bad)

    await wait_until(set_aside, "the agent to set aside every bad dispatch")
    async with scheduler(farm.store):
        await farm.submit("after")
        await farm.wait_status("after", "completed")
    assert agent.stats.malformed == len(bad)


async def test_the_scheduler_reconnects_after_the_server_closes_its_connection(
    farm: Farm, nats_server: NatsServer, prefix: str
) -> None:
    """A line the server refuses closes the scheduler's connection for good; it comes back.

    A fresh scheduler starts on a new connection, leads, and runs jobs again.
    """
    started: list[Scheduler] = []

    async def connect() -> JetStreamEventStore:
        return await JetStreamEventStore.connect(nats_server.url, Subjects(prefix), ensure=True)

    await farm.agent("a1")
    task = asyncio.create_task(
        run_connected(connect, FAST, "s1", started=started.append, pause_s=0.1)
    )
    try:

        async def leading(count: int) -> bool:
            if task.done():
                task.result()
            return len(started) >= count and started[count - 1].leading.is_set()

        await wait_until(lambda: leading(1), "the first scheduler to lead")
        await farm.submit("before")
        await farm.wait_status("before", "completed")
        first = started[0]
        # A control line past the server's 4 KB limit: the server answers -ERR and closes.
        await first.store.nc.publish("x." + "a" * 5000, b"")

        async def closed() -> bool:
            return first.store.nc.is_closed

        await wait_until(closed, "the server to close the first connection")
        await wait_until(lambda: leading(2), "a fresh scheduler to lead")
        assert not started[1].store.nc.is_closed
        await farm.submit("after")
        await farm.wait_status("after", "completed")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 30)


async def test_a_subject_the_client_refuses_is_a_refusal_not_an_outage(farm: Farm) -> None:
    """An append on a subject NATS refuses is a plain FfrtmpError, never StoreUnavailable.

    StoreUnavailable is what the scheduler holds as an outage; the store goes on after it.
    """
    item = Append(subject="bad subject\n", event=JobQueued(job="x", at=1.0), msg_id="bad")
    with pytest.raises(FfrtmpError, match="refuses the subject") as refused:
        await farm.store.append(item)
    assert not isinstance(refused.value, StoreUnavailable)
    good = Append(
        subject=farm.subjects.job_event("x", "sched"),
        event=JobQueued(job="x", at=1.0),
        msg_id="good",
    )
    assert await farm.store.append(good) == 1


async def test_an_sql_request_nested_past_the_decoder_is_a_bad_request(
    jetstream_store: JetStreamEventStore, tmp_path: Path
) -> None:
    """A raw SQL request whose params nest 50,000 deep gets a 400 answer, not a dead handler.

    The projector answers the next question as before.
    """
    projector = Projector(tmp_path / "p.duckdb", jetstream_store.subjects.prefix)
    service = await serve(jetstream_store.nc, projector)
    try:
        body = b'{"sql": "SELECT 1", "params": ' + NESTED + b"}"
        subject = sql_subject(jetstream_store.subjects)
        reply = await jetstream_store.nc.request(subject, body, timeout=10)
        assert (reply.headers or {}).get("Nats-Service-Error-Code") == "400"
        answer = await ask(jetstream_store.nc, jetstream_store.subjects, "SELECT 41 + 1")
        assert answer.result is not None
        assert answer.result.rows == [[42]]
    finally:
        await service.stop()
        projector.close()
