"""Bad input on the real wire: junk commands, oversized payloads, a full disk.

Each test proves two things: the bad input gets a clear, typed answer (a dead letter and a
count, an ``FfrtmpError`` naming the limit), and nothing else changes: the scheduler keeps
deciding, earlier events stay readable and the log keeps every invariant.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import msgspec
import nats
import pytest
from nats.aio.msg import Msg

from events.codec import accept_command, encode
from events.command_message import command_message
from events.commands import CancelJob, PauseJob, SubmitJob
from events.errors import FfrtmpError, InvalidSpec, MalformedMessage
from events.jetstream import JetStreamEventStore
from events.job_events import JobQueued
from events.spec import JobSpec
from events.store import Append
from events.subjects import Subjects
from ffrtmp.check import CheckSettings
from ffrtmp.check.read import check_store
from ffrtmp.natsd import NatsServer, NatsSettings, free_port, packaged_config
from tests.farm import Farm, scheduler, wait_until

pytestmark = pytest.mark.anyio


def _corpus(seed: int, size: int) -> list[bytes]:
    """Valid commands damaged at random: flipped bytes, cuts, bad UTF-8, wrong types, junk."""
    rng = random.Random(seed)  # noqa: S311 -- a reproducible corpus, not a secret
    spec = JobSpec(scenario="720p-h264")
    valid = [
        encode(SubmitJob(id="s", job="fz", at=1.0, spec=spec)),
        encode(CancelJob(id="c", job="fz", at=1.0)),
        encode(PauseJob(id="p", job="fz", at=1.0)),
    ]
    corpus = [b"", b"\xff not json", b'{"type":"\xc3ancelJob","id":"u","job":"fz","at":1}']
    while len(corpus) < size:
        data = bytearray(rng.choice(valid))
        match rng.randrange(4):
            case 0:
                data[rng.randrange(len(data))] ^= rng.randrange(1, 256)
            case 1:
                del data[rng.randrange(len(data)) :]
            case 2:
                data = bytearray(data.replace(b'"at":1.0', b'"at":"soon"'))
            case _:
                data = bytearray(rng.randbytes(rng.randrange(1, 64)))
        corpus.append(bytes(data))
    return corpus


async def test_junk_commands_are_dead_lettered_counted_and_the_scheduler_goes_on(
    farm: Farm,
) -> None:
    """Every undecodable command lands on the dead-letter subject, counted; real work goes on."""
    corpus = _corpus(seed=7, size=60)
    malformed = 0
    for data in corpus:
        try:
            accept_command(data)
        except MalformedMessage:
            malformed += 1
    dead: list[bytes] = []

    async def on_dead(msg: Msg) -> None:
        dead.append(msg.data)

    await farm.store.nc.subscribe(farm.subjects.dead_letter("cmd"), cb=on_dead)
    await farm.agent("a1")
    async with scheduler(farm.store) as sched:
        for data in corpus:
            await farm.js.publish(farm.subjects.command("cancel"), data)
        await farm.submit("after-junk")
        await farm.wait_status("after-junk", "completed")

        async def all_set_aside() -> bool:
            return sched.stats.malformed >= malformed and len(dead) >= malformed

        await wait_until(all_set_aside, f"{malformed} commands set aside")
        assert sched.stats.malformed == malformed
    assert sorted(dead) == sorted(d for d in corpus if _malformed(d))
    report = await check_store(farm.store)
    assert report.violations == []


def _malformed(data: bytes) -> bool:
    try:
        accept_command(data)
    except MalformedMessage:
        return True
    return False


async def test_an_oversized_event_is_refused_clearly_and_the_store_goes_on(
    jetstream_store: JetStreamEventStore,
) -> None:
    """An event over max_payload raises FfrtmpError naming the limit; later appends work."""
    subjects = jetstream_store.subjects
    huge = JobQueued(job="big", at=time.time(), reason="x" * (1 << 20))
    item = Append(subject=subjects.job_event("big", "sched"), event=huge, msg_id="big")
    with pytest.raises(FfrtmpError, match="max_payload"):
        await jetstream_store.append(item)
    small = msgspec.structs.replace(item, event=JobQueued(job="big", at=1.0), msg_id="small")
    assert await jetstream_store.append(small) == 1


async def test_an_oversized_command_is_refused_before_it_reaches_the_stream(farm: Farm) -> None:
    """A command over max_payload never reaches the commands stream.

    The client says so in one line (``InvalidSpec``, not a store outage); a sender that skips
    the client (any NATS client) is refused by the server's max_payload.
    """
    spec = JobSpec(scenario="720p-h264", labels={"blob": "x" * (1 << 20)})
    command = SubmitJob(id="big", job="big", at=time.time(), spec=spec)
    with pytest.raises(InvalidSpec, match="max payload"):
        await farm.send(command)
    message = command_message(farm.subjects, command)
    with pytest.raises(nats.errors.MaxPayloadError):
        await farm.js.publish(message.subject, message.payload, headers=message.headers)
    info = await farm.js.stream_info(farm.subjects.commands_stream)
    assert info.state.messages == 0


def _tiny_store_config(tmp_path: Path) -> Path:
    """The shipped nats.conf with a file store too small for more than a few events."""
    text = packaged_config().read_text().replace("max_file_store: 20GB", "max_file_store: 64KB")
    assert "max_file_store: 64KB" in text
    path = tmp_path / "tiny.conf"
    path.write_text(text)
    return path


@pytest.mark.slow
async def test_a_full_disk_refuses_appends_clearly_and_corrupts_nothing(tmp_path: Path) -> None:
    """With the store full, appends raise FfrtmpError; every acknowledged event stays readable."""
    settings = NatsSettings(
        port=free_port(),
        store_dir=str(tmp_path / "nats"),
        host="127.0.0.1",
        config=str(_tiny_store_config(tmp_path)),
    )
    subjects = Subjects("full")
    async with NatsServer(settings) as server:
        store = await JetStreamEventStore.connect(server.url, subjects, ensure=True)
        async with store:
            acked: list[int] = []
            error: FfrtmpError | None = None
            for i in range(2000):
                event = JobQueued(job=f"j{i}", at=1.0, reason="r" * 200)
                item = Append(
                    subject=subjects.job_event(f"j{i}", "sched"), event=event, msg_id=str(i)
                )
                try:
                    acked.append(await store.append(item))
                except FfrtmpError as exc:
                    error = exc
                    break
            assert error is not None, "the tiny store never filled"
            assert "resources" in str(error) or "storage" in str(error), str(error)
            stored = [seq async for seq, _ in store.replay()]
            assert stored == acked
    async with NatsServer(settings) as server:  # and it starts again on the full store
        store = await JetStreamEventStore.connect(server.url, subjects)
        async with store:
            assert [seq async for seq, _ in store.replay()] == acked
            report = await check_store(store, CheckSettings())
            assert report.events == len(acked)
