"""NATS users per role against a real nats-server: every denial, and every needed allowance.

The server runs the shipped settings plus the block ``ffrtmp auth conf`` generates, with the
passwords in its environment (as ``deploy/nats/nats-auth.conf`` expects). A denied publish or
subscription is reported by the server as a permissions violation, asynchronously; a denied
JetStream API request also gets no answer. Both are checked.
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from events.codec import encode
from events.commands import SubmitJob
from events.connection import inbox_for
from events.deadletter import AGENT_SOURCE, CMD_SOURCE, Aside
from events.deadletter import headers as dead_letter_headers
from events.errors import FfrtmpError, StoreUnavailable
from events.jetstream import JetStreamEventStore
from events.job_events import JobQueued
from events.spec import JobSpec
from events.store import Append
from events.subjects import MSG_ID, Subjects
from ffrtmp.authconf import password_variable, render, users
from ffrtmp.client.deadletters import bounds as dead_letter_bounds
from ffrtmp.client.deadletters import letters as dead_letters
from ffrtmp.client.submit import Route, submit
from ffrtmp.exporter.deadletters import DeadLetterTally
from ffrtmp.natsd import NatsServer, NatsSettings, free_port, packaged_config
from projections.runner import Projector
from projections.service import ask, serve, sql_subject
from tests.farm import CPU, FAST, scheduler, wait_until
from tests.scrape import Samples, running, scrape_when, value
from tests.secured import start_secured
from tests.simagent import Behaviour, SimAgent

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("nats_binary")]
PREFIX = "sec"
AGENTS = ("a1", "a2")
SUBJECTS = Subjects(PREFIX)


def _password(user: str) -> str:
    return f"pw-{user}"


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NatsServer]:
    """A nats-server with users per role, passwords from its environment, streams created."""
    conf = tmp_path / "auth.conf"
    users_conf = tmp_path / "users.conf"
    users_conf.write_text(render(SUBJECTS, AGENTS))
    conf.write_text(packaged_config().read_text() + '\ninclude "users.conf"\n')
    for user in users(SUBJECTS, AGENTS):
        monkeypatch.setenv(password_variable(user.name), _password(user.name))
    settings = NatsSettings(
        port=free_port(), store_dir=str(tmp_path / "nats"), host="127.0.0.1", config=str(conf)
    )
    server = NatsServer(settings)
    try:
        start_secured(server, lambda: _connect(server, "scheduler"), SUBJECTS)
        yield server
    finally:
        server.kill()


class Seen:
    """Errors the server reported to one connection."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def on_error(self, exc: Exception) -> None:
        self.errors.append(str(exc).lower())

    async def violation(self, kind: str, subject: str) -> None:
        want = f'permissions violation for {kind} to "{subject.lower()}"'

        async def reported() -> bool:
            return any(want in e for e in self.errors)

        await wait_until(reported, want, deadline_s=5)


async def _connect(server: NatsServer, user: str, seen: Seen | None = None) -> NatsClient:
    return await nats.connect(
        server.url,
        user=user,
        password=_password(user),
        allow_reconnect=False,
        max_reconnect_attempts=1,
        error_cb=(seen or Seen()).on_error,
        inbox_prefix=inbox_for(user),  # each user may read its own replies only
    )


@contextlib.asynccontextmanager
async def session(server: NatsServer, user: str) -> AsyncIterator[tuple[NatsClient, Seen]]:
    """A connection as ``user`` and the errors the server reports to it."""
    seen = Seen()
    nc = await _connect(server, user, seen)
    try:
        yield nc, seen
    finally:
        await nc.close()


def _event(job: str) -> JobQueued:
    return JobQueued(job=job, at=time.time())


async def _denied_publish(nc: NatsClient, seen: Seen, subject: str) -> None:
    await nc.publish(subject, b"{}")
    await nc.flush()
    await seen.violation("publish", subject)


async def _denied_request(nc: NatsClient, seen: Seen, subject: str) -> None:
    with pytest.raises((NatsError, TimeoutError)):
        await nc.request(subject, b"{}", timeout=0.5)
    await seen.violation("publish", subject)


# nats-py leaves the socket of a refused connection for the garbage collector: collected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_wrong_password_and_no_credentials_are_refused(secured: NatsServer) -> None:
    """Only known users with their own password connect."""
    for user, password in (("a1", "pw-agent-a1"), ("agent-a1", "wrong")):
        with pytest.raises((NatsError, OSError)):
            await nats.connect(
                secured.url,
                user=user,
                password=password,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                error_cb=Seen().on_error,
            )
    with pytest.raises((NatsError, OSError)):
        await nats.connect(
            secured.url, allow_reconnect=False, max_reconnect_attempts=1, error_cb=Seen().on_error
        )
    gc.collect()


async def test_an_agent_writes_only_its_own_subjects(secured: NatsServer) -> None:
    """agent-a1 appends its own events and heartbeats; nothing of a2's or the scheduler's."""
    async with session(secured, "agent-a1") as (nc, seen):
        store = JetStreamEventStore(nc, SUBJECTS, timeout_s=1.0)
        await store.start()
        own = Append(subject=SUBJECTS.job_event("j1", "a1"), event=_event("j1"), msg_id="own")
        assert await store.append(own) >= 1
        assert (await store.load("j1")).last_seq >= 1  # reads a job's history
        await nc.publish(SUBJECTS.heartbeat("a1"), b"{}")
        for subject in (
            SUBJECTS.job_event("j1", "a2"),
            SUBJECTS.job_event("j1", "sched"),
            SUBJECTS.agent_event("a2"),
            SUBJECTS.heartbeat("a2"),
            SUBJECTS.command("submit"),
            SUBJECTS.submit_request,  # no asking the scheduler for work either
            SUBJECTS.work("a1"),  # no dispatching to itself
            SUBJECTS.work("a2"),
            SUBJECTS.assignment("j1", "a1"),  # no assigning itself a job
            SUBJECTS.assignment("j1", "a2"),
        ):
            await _denied_publish(nc, seen, subject)
        forged = Append(subject=SUBJECTS.job_event("j2", "a2"), event=_event("j2"), msg_id="x")
        with pytest.raises(StoreUnavailable):
            await store.append(forged)
    async with session(secured, "scheduler") as (nc, _):
        store = JetStreamEventStore(nc, SUBJECTS)
        await store.start()
        assert [type(e).__name__ for _, e in (await store.load("j2")).events] == []


async def test_an_agent_reads_only_its_own_work(secured: NatsServer) -> None:
    """agent-a1 pulls and acks its own durable; another's consumer, filter or stream is denied."""
    work = SUBJECTS.work_stream
    async with session(secured, "scheduler") as (nc, _):
        await nc.jetstream().publish(SUBJECTS.work("a1"), b"{}", headers={MSG_ID: "d1"})
    async with session(secured, "agent-a1") as (nc, seen):
        js = nc.jetstream(timeout=1.0)
        sub = await js.pull_subscribe(SUBJECTS.work("a1"), durable="agent-a1", stream=work)
        (msg,) = await sub.fetch(1, timeout=2)
        await msg.ack_sync()
        for subject in (
            f"$JS.API.CONSUMER.CREATE.{work}.agent-a1.{SUBJECTS.work('a2')}",
            f"$JS.API.CONSUMER.CREATE.{work}.agent-a2.{SUBJECTS.work('a2')}",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{work}.agent-a1",
            f"$JS.API.CONSUMER.CREATE.{work}",
            f"$JS.API.CONSUMER.MSG.NEXT.{work}.agent-a2",
            f"$JS.API.CONSUMER.CREATE.{SUBJECTS.commands_stream}",
            f"$JS.API.STREAM.DELETE.{SUBJECTS.events_stream}",
            f"$JS.API.STREAM.PURGE.{work}",
        ):
            await _denied_request(nc, seen, subject)
        spied = ("_INBOX.>", "_INBOX.scheduler.>", "_INBOX.agent-a2.>", "_INBOX.operator.>")
        for subject in (SUBJECTS.work("a2"), SUBJECTS.all_heartbeats, SUBJECTS.all_events, *spied):
            await nc.subscribe(subject)
            await nc.flush()
            await seen.violation("subscription", subject)


async def test_an_agent_reads_only_its_own_assignments(secured: NatsServer) -> None:
    """agent-a1's consumer on the events stream takes only its own filter and name."""
    events = SUBJECTS.events_stream
    async with session(secured, "scheduler") as (nc, _):
        store = JetStreamEventStore(nc, SUBJECTS)
        await store.start()
        for agent in ("a2", "a1"):
            assigned = Append(
                subject=SUBJECTS.assignment(f"j-{agent}", agent),
                event=_event(f"j-{agent}"),
                msg_id=f"as-{agent}",
            )
            await store.append(assigned)
    async with session(secured, "agent-a1") as (nc, seen):
        js = nc.jetstream(timeout=1.0)
        own = SUBJECTS.assignments_to("a1")
        sub = await js.pull_subscribe(own, durable="agent-a1", stream=events)
        (msg,) = await sub.fetch(1, timeout=2)
        assert msg.subject == SUBJECTS.assignment("j-a1", "a1")
        await msg.ack_sync()
        for subject in (
            f"$JS.API.CONSUMER.CREATE.{events}.agent-a1.{SUBJECTS.assignments_to('a2')}",
            f"$JS.API.CONSUMER.CREATE.{events}.agent-a1.{SUBJECTS.all_events}",
            f"$JS.API.CONSUMER.CREATE.{events}.agent-a2.{SUBJECTS.assignments_to('a2')}",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{events}.agent-a1",
            f"$JS.API.CONSUMER.CREATE.{events}",
            f"$JS.API.CONSUMER.MSG.NEXT.{events}.agent-a2",
        ):
            await _denied_request(nc, seen, subject)


async def test_the_operator_sends_commands_and_reads_but_writes_no_event(
    secured: NatsServer,
) -> None:
    """The CLI's user submits (acknowledged by the stream) and replays; it cannot forge events."""
    async with session(secured, "operator") as (nc, seen):
        command = SubmitJob(id="c1", job="j9", at=time.time(), spec=JobSpec(scenario="720p-h264"))
        ack = await nc.jetstream().publish(SUBJECTS.command("submit"), encode(command))
        assert ack.seq >= 1
        store = JetStreamEventStore(nc, SUBJECTS, timeout_s=1.0)
        await store.start()
        assert len([seq async for seq, _ in store.replay()]) >= 0
        for subject in (SUBJECTS.job_event("j9", "sched"), SUBJECTS.work("a1")):
            await _denied_publish(nc, seen, subject)
        for subject in (
            f"$JS.API.STREAM.DELETE.{SUBJECTS.events_stream}",
            f"$JS.API.CONSUMER.CREATE.{SUBJECTS.commands_stream}",
            f"$JS.API.CONSUMER.DURABLE.CREATE.{SUBJECTS.commands_stream}.scheduler",
        ):
            await _denied_request(nc, seen, subject)


@pytest.mark.parametrize("user", ["exporter", "projector"])
async def test_readers_read_and_write_nothing(secured: NatsServer, user: str) -> None:
    """The exporter and projector replay the log and heartbeats; commands and events are denied."""
    async with session(secured, "scheduler") as (nc, _):
        store = JetStreamEventStore(nc, SUBJECTS)
        await store.start()
        await store.append(
            Append(subject=SUBJECTS.job_event("r", "sched"), event=_event("r"), msg_id="r")
        )
    async with session(secured, user) as (nc, seen):
        store = JetStreamEventStore(nc, SUBJECTS, timeout_s=1.0)
        await store.start()
        assert len([seq async for seq, _ in store.replay()]) >= 1
        for subject in (
            SUBJECTS.command("submit"),
            SUBJECTS.submit_request,
            SUBJECTS.job_event("r", "sched"),
            SUBJECTS.heartbeat("a1"),
        ):
            await _denied_publish(nc, seen, subject)
        await _denied_request(nc, seen, f"$JS.API.STREAM.DELETE.{SUBJECTS.events_stream}")
        await _denied_request(nc, seen, f"$JS.API.CONSUMER.CREATE.{SUBJECTS.work_stream}")


async def test_a_job_runs_end_to_end_with_each_process_as_its_own_user(
    secured: NatsServer,
) -> None:
    """Scheduler, agent and operator under their own users run a job to completion.

    The operator's submit is asked of the leading scheduler, which answers it on the operator's
    own inbox: decided, no command stored.
    """
    async with contextlib.AsyncExitStack() as stack:
        sched_nc = await stack.enter_async_context(_closing(await _connect(secured, "scheduler")))
        agent_nc = await stack.enter_async_context(_closing(await _connect(secured, "agent-a1")))
        op_nc = await stack.enter_async_context(_closing(await _connect(secured, "operator")))
        sched_store = JetStreamEventStore(sched_nc, SUBJECTS)
        await sched_store.start()
        agent_store = JetStreamEventStore(agent_nc, SUBJECTS)
        await agent_store.start()
        async with scheduler(sched_store, FAST):
            agent = SimAgent(
                agent_nc,
                agent_store,
                SUBJECTS,
                "a1",
                CPU,
                1,
                heartbeat_s=0.2,
                behaviour=Behaviour(run_s=0.05),
            )
            await agent.start()
            try:
                command = SubmitJob(
                    id="e2e", job="e2e", at=time.time(), spec=JobSpec(scenario="720p-h264")
                )
                route = await submit(op_nc, op_nc.jetstream(), SUBJECTS, command)
                assert route is Route.DECIDED
                info = await sched_nc.jetstream().stream_info(SUBJECTS.commands_stream)
                assert info.state.last_seq == 0

                async def done() -> bool:
                    kinds = [type(e).__name__ for _, e in (await sched_store.load("e2e")).events]
                    return "JobCompleted" in kinds

                await wait_until(done, "the job to complete under per-role users")
            finally:
                await agent.stop()
        assert agent.executions == [("e2e", 1)]
        assert agent.errors == 0


@contextlib.asynccontextmanager
async def _closing(nc: NatsClient) -> AsyncIterator[NatsClient]:
    try:
        yield nc
    finally:
        with contextlib.suppress(FfrtmpError, NatsError):
            await nc.close()


async def test_the_operator_asks_the_projectors_sql_and_the_exporter_cannot(
    secured: NatsServer,
) -> None:
    """The projector serves SQL as its own user; the operator may ask it, the exporter may not."""
    async with session(secured, "projector") as (projector_nc, _):
        service = await serve(projector_nc, Projector(":memory:", PREFIX))
        try:
            async with session(secured, "operator") as (nc, _):
                reply = await ask(nc, SUBJECTS, "SELECT 41 + 1 AS answer", timeout_s=5)
                assert reply.result is not None
                assert reply.result.rows == [[42]]
            async with session(secured, "exporter") as (nc, seen):
                await _denied_request(nc, seen, sql_subject(SUBJECTS))
        finally:
            await service.stop()


async def test_the_exporter_sees_the_leading_scheduler_as_its_own_user(
    secured: NatsServer,
) -> None:
    """Under the exporter user, ``ffrtmp_scheduler_up`` reads 1 while a scheduler leads."""
    async with contextlib.AsyncExitStack() as stack:
        sched_nc = await stack.enter_async_context(_closing(await _connect(secured, "scheduler")))
        exporter_nc = await stack.enter_async_context(_closing(await _connect(secured, "exporter")))
        sched_store = JetStreamEventStore(sched_nc, SUBJECTS)
        await sched_store.start()
        exporter_store = JetStreamEventStore(exporter_nc, SUBJECTS)
        await exporter_store.start()
        async with scheduler(sched_store, FAST), running(exporter_store) as exporter:

            def leads(samples: Samples) -> bool:
                return value(samples, "ffrtmp_scheduler_up") == 1

            samples = await scrape_when(exporter.port, leads, "the exporter to see the leader")
        assert (value(samples, "ffrtmp_scheduler_uptime_seconds") or -1) >= 0


async def test_dead_letters_are_written_by_their_consumer_and_read_by_operator_and_exporter(
    secured: NatsServer,
) -> None:
    """Each consumer sets aside on its own dead-letter subject; operator and exporter read them."""
    async with session(secured, "scheduler") as (nc, _):
        fields = dead_letter_headers(Aside.MALFORMED, "bad", SUBJECTS.command("submit"))
        await nc.publish(SUBJECTS.dead_letter(CMD_SOURCE), b"junk", headers=fields)
        await nc.flush()
    async with session(secured, "agent-a1") as (nc, seen):
        await nc.publish(SUBJECTS.dead_letter("agent-a1"), b"junk work")
        await nc.flush()
        for subject in (SUBJECTS.dead_letter(CMD_SOURCE), SUBJECTS.dead_letter("agent-a2")):
            await _denied_publish(nc, seen, subject)
        await _denied_request(nc, seen, f"$JS.API.STREAM.MSG.GET.{SUBJECTS.dead_letter_stream}")
    async with session(secured, "operator") as (nc, seen):
        known = await dead_letter_bounds(nc, SUBJECTS)
        assert known is not None
        assert known.count == 2  # the denied publishes stored nothing
        found = await dead_letters(nc, SUBJECTS, range(known.first, known.last + 1))
        assert [(letter.source, letter.kind) for letter in found] == [
            (CMD_SOURCE, Aside.MALFORMED),
            (AGENT_SOURCE, "?"),
        ]
        await _denied_publish(nc, seen, SUBJECTS.dead_letter(CMD_SOURCE))
        for verb in ("PURGE", "MSG.DELETE"):
            await _denied_request(nc, seen, f"$JS.API.STREAM.{verb}.{SUBJECTS.dead_letter_stream}")
    async with session(secured, "exporter") as (nc, seen):
        tally = DeadLetterTally(SUBJECTS)
        await tally.refresh(nc)
        assert tally.counts() == {
            (CMD_SOURCE, Aside.MALFORMED): 1,
            (AGENT_SOURCE, "?"): 1,
            (CMD_SOURCE, Aside.CONFLICTING): 0,  # the kinds ffrtmp sets aside show, at 0
            (AGENT_SOURCE, Aside.MALFORMED): 0,
        }
        await _denied_publish(nc, seen, SUBJECTS.dead_letter("agent-a1"))
