"""Submits asked of the leading scheduler: decided at once, stored as commands when none answers.

Real nats-server, the real ``Scheduler`` and the client's own door (``client.submit``). The
commands stream is the witness: a submit the leader decided never stored a command there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence

import msgspec
import nats
import pytest
from nats.aio.msg import Msg

from events.codec import accept_command, encode
from events.command_message import command_message
from events.commands import CancelJob, SubmitJob
from events.enums import JobStatus
from events.errors import MalformedMessage
from events.jetstream import JetStreamEventStore
from events.job_events import CommandRefused, JobSubmitted
from events.spec import JobSpec
from events.store import Append
from events.streams import events_stream
from events.subjects import SCHEDULER_WRITER
from events.submit_answer import Answer, decode_answer
from ffrtmp.check.read import check_store
from ffrtmp.client.decision import send_and_decide
from ffrtmp.client.submit import Route, submit
from ffrtmp.natsd import NatsServer
from ffrtmp.scheduler.door import Delivery, Door
from ffrtmp.scheduler.service import CONFLICT_RETRIES
from tests.farm import FAST, Farm, scheduler, wait_until
from tests.integration.test_bad_input import _corpus

pytestmark = pytest.mark.anyio


def _submit(job: str, command_id: str = "", scenario: str = "720p-h264") -> SubmitJob:
    spec = JobSpec(scenario=scenario)
    return SubmitJob(id=command_id or f"cmd-{job}", job=job, at=time.time(), spec=spec)


async def _commands_stored(farm: Farm) -> int:
    """How many commands the commands stream ever stored (acknowledged ones included)."""
    return (await farm.js.stream_info(farm.subjects.commands_stream)).state.last_seq


async def _true(value: bool) -> bool:
    return value


async def test_a_submit_to_a_leading_scheduler_stores_no_command_and_runs(farm: Farm) -> None:
    """Decided directly: the job completes and the commands stream never held a message."""
    await farm.agent("a1")
    async with scheduler(farm.store):
        assert await farm.client.send(_submit("direct")) is Route.DECIDED
        assert JobSubmitted in {type(e) for e in await farm.history("direct")}  # already there
        await farm.wait_status("direct", JobStatus.COMPLETED)
    assert await _commands_stored(farm) == 0


async def test_with_no_scheduler_the_submit_is_stored_and_decided_when_one_leads(
    farm: Farm,
) -> None:
    """No responders: the command goes on the commands stream and waits for a scheduler."""
    await farm.agent("a1")
    assert await farm.client.send(_submit("later")) is Route.STORED
    assert await _commands_stored(farm) == 1
    assert await farm.history("later") == []
    async with scheduler(farm.store):
        await farm.wait_status("later", JobStatus.COMPLETED)


async def test_a_standby_does_not_answer(farm: Farm) -> None:
    """Only the leader answers: a scheduler that does not lead leaves the submit to the stream."""
    async with scheduler(farm.store, msgspec.structs.replace(FAST, lead=False)) as standby:
        await wait_until(lambda: _true(standby.ready.is_set()), "the standby to catch up")
        assert await farm.client.send(_submit("standby")) is Route.STORED
    assert await _commands_stored(farm) == 1


async def test_a_submit_sent_both_ways_is_decided_once(farm: Farm) -> None:
    """Asked directly and stored too (either order): one JobSubmitted, no refusal."""
    first = _submit("both-1")
    async with scheduler(farm.store) as sched:
        assert await farm.client.send(first) is Route.DECIDED
        message = command_message(farm.subjects, first)
        await farm.js.publish(message.subject, message.payload, headers=message.headers)
        await wait_until(lambda: _true(sched.stats.commands >= 2), "the stored copy decided")
    second = _submit("both-2")
    assert await farm.client.send(second) is Route.STORED  # no scheduler: stored
    async with scheduler(farm.store) as sched:
        await wait_until(lambda: _has_submitted(farm, "both-2"), "the stored submit decided")
        assert await farm.client.send(second) is Route.DECIDED  # asked again: a no-op
        assert sched.stats.commands == 2
    for job in ("both-1", "both-2"):
        kinds = await farm.kinds(job)
        assert kinds.count("JobSubmitted") == 1, job
        assert "CommandRefused" not in kinds, job


async def _has_submitted(farm: Farm, job: str) -> bool:
    return "JobSubmitted" in await farm.kinds(job)


async def test_a_refused_submit_answers_the_refusal(farm: Farm) -> None:
    """A spec the decider refuses: the answer is decided, the refusal in the log, no command."""
    async with scheduler(farm.store):
        decided, state = await send_and_decide(farm.client, _submit("bad", scenario="8K-nope"))
    assert decided.decided
    assert decided.refused
    assert "invalid spec" in decided.message
    assert state is not None
    (refusal,) = await farm.history("bad")
    assert isinstance(refusal, CommandRefused)
    assert refusal.command_id == "cmd-bad"
    assert await _commands_stored(farm) == 0


async def test_only_submits_are_decided_at_the_door(farm: Farm) -> None:
    """Another command asked on the submit subject is set aside, its reason answered."""
    dead: list[Msg] = []

    async def on_dead(msg: Msg) -> None:
        dead.append(msg)

    await farm.store.nc.subscribe(farm.subjects.dead_letter("cmd"), cb=on_dead)
    cancel = CancelJob(id="cancel-1", job="nope", at=time.time())
    async with scheduler(farm.store) as sched:
        reply = await farm.store.nc.request(farm.subjects.submit_request, encode(cancel), 5.0)
        answer = decode_answer(reply.data)
        assert answer is not None
        assert answer.answer is Answer.SET_ASIDE
        assert "only SubmitJob" in answer.reason
        assert sched.stats.malformed == 1
        await wait_until(lambda: _true(len(dead) == 1), "the dead letter")
    assert dead[0].data == encode(cancel)


def _set_aside_at_the_door(data: bytes) -> bool:
    try:
        return not isinstance(accept_command(data), SubmitJob)
    except MalformedMessage:
        return True


async def test_junk_at_the_door_is_answered_and_the_scheduler_goes_on(farm: Farm) -> None:
    """The bad-input corpus asked directly: each junk answered set-aside, dead-lettered, counted.

    The scheduler keeps deciding; the log holds only the corpus's own submits and the refusals
    recorded where a junk command named a job, and it breaks no invariant.
    """
    corpus = _corpus(seed=11, size=60)
    expected = [d for d in corpus if _set_aside_at_the_door(d)]
    dead: list[bytes] = []

    async def on_dead(msg: Msg) -> None:
        dead.append(msg.data)

    await farm.store.nc.subscribe(farm.subjects.dead_letter("cmd"), cb=on_dead)
    nc = farm.store.nc
    async with scheduler(farm.store) as sched:
        answers = []
        for data in corpus:
            reply = await nc.request(farm.subjects.submit_request, data, timeout=5.0)
            answers.append(decode_answer(reply.data))
        assert await farm.client.send(_submit("after-junk")) is Route.DECIDED
        await wait_until(lambda: _true(len(dead) >= len(expected)), "every junk dead-lettered")
        assert sched.stats.malformed == len(expected)
    for data, answer in zip(corpus, answers, strict=True):
        assert answer is not None
        want = Answer.SET_ASIDE if _set_aside_at_the_door(data) else Answer.DECIDED
        assert answer.answer is want, data
        assert (answer.reason != "") is (want is Answer.SET_ASIDE)
    assert sorted(dead) == sorted(expected)
    kinds = {type(e).__name__ async for e in _events(farm)}
    assert kinds <= {"JobSubmitted", "CommandRefused"}
    assert (await check_store(farm.store)).violations == []
    assert await _commands_stored(farm) == 0


async def _events(farm: Farm) -> AsyncIterator[object]:
    async for _, event in farm.store.replay():
        yield event


async def test_a_submit_held_by_an_outage_is_stored_and_decided_once(farm: Farm) -> None:
    """The log takes no appends: the leader answers "held", the client stores the command.

    The held request leaves the decider's held list (it is answered), so only the stored copy
    is decided when the log is back: one decision, one JobSubmitted, nothing set aside.
    """
    js, subjects = farm.js, farm.subjects
    config = events_stream(subjects)
    detached = dataclasses.replace(config, subjects=[f"{subjects.prefix}.detached.>"])
    await farm.agent("a1")
    async with scheduler(farm.store) as sched:
        await js.update_stream(detached)
        try:
            assert await farm.client.send(_submit("held")) is Route.STORED
            assert await _commands_stored(farm) == 1
            await wait_until(lambda: _true(sched.stats.outages >= 2), "the outage to be seen")
        finally:
            await js.update_stream(config)
        await farm.wait_status("held", JobStatus.COMPLETED)
        assert sched.stats.commands == 1
        assert sched.stats.malformed == sched.stats.conflicting == 0
    assert (await farm.kinds("held")).count("JobSubmitted") == 1


async def test_requests_left_in_the_inbox_when_leading_ends_are_answered_held(
    farm: Farm,
) -> None:
    """Closing the door answers its undecided requests "held" and keeps the pulled commands."""
    inbox: asyncio.Queue[Delivery] = asyncio.Queue()
    door = Door(farm.store.nc, farm.subjects, inbox, asyncio.Event())
    await farm.store_command(_submit("pulled"))
    pull = await farm.js.pull_subscribe(farm.subjects.all_commands, durable="probe")
    (pulled,) = await pull.fetch(1, timeout=5.0)
    await inbox.put(pulled)
    await door.open()
    asking = asyncio.create_task(
        farm.store.nc.request(farm.subjects.submit_request, encode(_submit("asked")), timeout=5.0)
    )
    await wait_until(lambda: _true(inbox.qsize() == 2), "the request in the inbox")
    await door.close()
    answer = decode_answer((await asking).data)
    assert answer is not None
    assert answer.answer is Answer.HELD
    assert [item.data for item in [inbox.get_nowait()]] == [pulled.data]
    assert inbox.empty()
    assert await farm.history("asked") == []  # nothing decided it


class MovingJob(JetStreamEventStore):
    """The scheduler's store; before each of its appends to ``job``, another write lands there.

    The write is junk on an agent's subject of the job (every reader sets it aside), so each
    append the scheduler makes expects a sequence the job has already left: a real conflict,
    refused by the server itself.
    """

    job = ""
    moves = 0

    async def append_many(self, items: Sequence[Append]) -> list[int | Exception]:
        """Move the job first when the scheduler appends to it."""
        if self.job and any(item.subject.startswith(self._on_job) for item in items):
            self.moves += 1
            await self.nc.jetstream().publish(self.subjects.job_event(self.job, "a1"), b"junk")
        return await super().append_many(items)

    @property
    def _on_job(self) -> str:
        return self.subjects.job_event(self.job, SCHEDULER_WRITER)


async def test_a_submit_that_keeps_conflicting_is_stored_and_decided_from_the_stream(
    farm: Farm,
) -> None:
    """Conflicts on every try: the leader answers "retry", the client stores it, it lands once."""
    url = farm.store.nc.connected_url.geturl() if farm.store.nc.connected_url else ""
    async with await MovingJob.connect(url, farm.subjects) as moving:
        moving.job = "moving"
        async with scheduler(moving) as sched:
            assert await farm.client.send(_submit("moving")) is Route.STORED
            assert sched.stats.conflicts >= CONFLICT_RETRIES
            assert await _commands_stored(farm) == 1
            moving.job = ""  # the job stops moving: the stored copy is decided
            await wait_until(lambda: _has_submitted(farm, "moving"), "the stored copy decided")
            assert sched.stats.conflicting == 0
    assert (await farm.kinds("moving")).count("JobSubmitted") == 1
    assert moving.moves >= CONFLICT_RETRIES


@pytest.mark.parametrize("reply", [None, b"\xff not an answer", b'{"answer":"later"}'])
async def test_a_responder_that_hangs_or_answers_junk_leaves_the_submit_stored(
    farm: Farm, reply: bytes | None
) -> None:
    """Whatever answers on the subject (a hung leader, an impostor), no answer means: store it.

    The responder here is a plain subscription: the scheduler never hangs on purpose nor
    answers junk, and the client's reading of an answer is what is under test.
    """
    nc = farm.store.nc

    async def respond(msg: Msg) -> None:
        if reply is not None:
            await msg.respond(reply)

    sub = await nc.subscribe(farm.subjects.submit_request, cb=respond)
    try:
        route = await submit(nc, farm.js, farm.subjects, _submit("odd"), timeout_s=0.3)
    finally:
        await sub.unsubscribe()
    assert route is Route.STORED
    assert await _commands_stored(farm) == 1


async def test_a_door_that_cannot_open_leaves_submits_to_the_stream(
    farm: Farm, nats_server: NatsServer
) -> None:
    """Opening on a failed connection does not end the scheduler: submits are stored instead."""
    nc = await nats.connect(nats_server.url)
    await nc.close()
    door = Door(nc, farm.subjects, asyncio.Queue(), asyncio.Event())
    await door.open()  # logs, does not raise
    await door.close()
    assert await farm.client.send(_submit("unopened")) is Route.STORED
