"""The scheduler's intake: operator commands from the durable consumer into the decider's inbox.

The inbox also takes the submits asked of the leader directly (``door``): both are a
``Delivery`` to the decider.

While a scheduler leads, the intake pulls from the durable ``scheduler`` consumer on the
commands stream, in batches, into a bounded queue the decider empties (the decider acknowledges
a command only after its decision is in the log, so an unacknowledged one returns to the next
leader). The consumer keeps our place through any outage; binding it waits for the stream, as
a stream leader being elected at the moment a scheduler starts to lead must not end it.

A command is set aside (``set_aside``) for one of two reasons, its ``Aside`` kind: it does not
decode or breaks a limit (``malformed``: no retry can help), or it is valid but its appends met a
job that moved under every try of ``MAX_DELIVER`` deliveries (``conflicting``: sending it again
may well succeed). Either way its refusal is recorded where it names a job, so its sender can
read why, and the message goes to the dead-letter subject with its kind and reason in headers.
An I/O edge of the scheduler service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final, assert_never

import msgspec
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.client import JetStreamContext
from nats.js.errors import FetchTimeoutError

from events import dedup
from events.aio import raise_if_cancelling
from events.commands import AgentCommandBase, OperatorCommand
from events.deadletter import CMD_SOURCE, Aside, fit, headers
from events.errors import FfrtmpError, InvalidSpec
from events.ids import check_id
from events.jetstream import JetStreamEventStore
from events.job_events import CommandRefused
from events.limits import check_command_id
from events.natserrors import FAILURES
from events.store import Append
from events.subjects import SCHEDULER_WRITER, Subjects
from ffrtmp.scheduler.door import Delivery, noting

log = logging.getLogger(__name__)

CONSUMER: Final = "scheduler"
MAX_DELIVER: Final = 5


class Intake:
    """The durable command consumer, pulled into ``inbox``; ``run`` while leading."""

    def __init__(
        self,
        js: JetStreamContext,
        subjects: Subjects,
        wake: asyncio.Event,
        *,
        fetch_batch: int,
        ack_wait_s: float,
        pause_s: float,
    ) -> None:
        """Pull ``fetch_batch`` at a time; set ``wake`` when commands are waiting."""
        self.inbox: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=4 * fetch_batch)
        self._js = js
        self._subjects = subjects
        self._wake = wake
        self._fetch_batch = fetch_batch
        self._ack_wait_s = ack_wait_s
        self._pause_s = pause_s

    async def run(self) -> None:
        """Pull commands from the durable consumer into the inbox until cancelled."""
        config = ConsumerConfig(
            durable_name=CONSUMER,
            ack_policy=AckPolicy.EXPLICIT,
            max_deliver=MAX_DELIVER,
            ack_wait=self._ack_wait_s,
            filter_subject=self._subjects.all_commands,
            max_ack_pending=-1,
        )
        sub = await self._pull_subscribe(config)
        try:
            while True:
                try:
                    msgs = await sub.fetch(self._fetch_batch, timeout=1.0)
                except (FetchTimeoutError, TimeoutError):  # acted on: nothing came, pull again
                    continue
                except FAILURES as exc:  # reconnecting: the durable consumer keeps our place
                    raise_if_cancelling()
                    log.warning("command intake paused: %s", exc)
                    await asyncio.sleep(self._pause_s)
                    continue
                for msg in msgs:
                    await self.inbox.put(msg)
                self._wake.set()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _pull_subscribe(self, config: ConsumerConfig) -> JetStreamContext.PullSubscription:
        """Bind the durable command consumer, through an outage: leading starts during one."""
        while True:
            try:
                return await self._js.pull_subscribe(
                    self._subjects.all_commands,
                    durable=CONSUMER,
                    stream=self._subjects.commands_stream,
                    config=config,
                )
            except FAILURES as exc:  # a stream leader being elected, say
                raise_if_cancelling()
                log.warning("command intake waits for the commands stream: %s", exc)
                await asyncio.sleep(self._pause_s)


class _Peek(msgspec.Struct):
    """What can be read of a command that does not decode, to record its refusal."""

    id: str = ""
    job: str = ""
    type: str = ""


async def set_aside(
    store: JetStreamEventStore, msg: Delivery, kind: Aside, reason: str, now: float
) -> None:
    """Record a command's refusal where it names a job, dead-letter it, drop it.

    ``reason`` says why in words; the refusal reads ``<kind> command: <reason>``. A submit
    request is answered with it (``door.noting``).
    """
    log.warning("command on %s set aside (%s): %s", msg.subject, kind, reason)
    subjects = store.subjects
    with contextlib.suppress(msgspec.DecodeError, UnicodeDecodeError, RecursionError, FfrtmpError):
        peek = msgspec.json.decode(msg.data, type=_Peek)
        if peek.job and peek.id and _valid_ids(peek):
            refusal = CommandRefused(
                job=peek.job,
                at=now,
                cause=peek.id,
                command_id=peek.id,
                command=(peek.type or "?")[:64],
                reason=f"{kind} command: {reason}"[:512],
            )
            item = Append(
                subject=subjects.job_event(peek.job, SCHEDULER_WRITER),
                event=refusal,
                msg_id=_refusal_id(kind, peek.id),
            )
            await store.append(item)
    fields = headers(kind, reason, msg.subject)
    data, fields = fit(msg.data, fields, store.nc.max_payload)
    await store.nc.publish(subjects.dead_letter(CMD_SOURCE), data, headers=fields)
    noting(msg, f"{kind} command: {reason}")
    await msg.term()


def _refusal_id(kind: Aside, command_id: str) -> str:
    match kind:
        case Aside.MALFORMED:
            return dedup.malformed_command(command_id)
        case Aside.CONFLICTING:
            return dedup.conflicting_command(command_id)
        case _:
            assert_never(kind)


def _valid_ids(peek: _Peek) -> bool:
    """Whether a refusal can be recorded under the command's job id and command id."""
    try:
        check_id(peek.job)
        check_command_id(peek.id)
    except InvalidSpec:
        return False
    return True


def command_key(command: OperatorCommand) -> str:
    """What a command is about: commands about the same thing are decided one after another."""
    if isinstance(command, AgentCommandBase):
        return f"agent:{command.agent}"
    return f"job:{command.job}"
