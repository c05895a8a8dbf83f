"""The submit door: submits asked of the leading scheduler, fed to the decider like pulled ones.

While a scheduler leads, a plain core subscription on ``<prefix>.rpc.submit`` puts each request
into the same inbox as the durable command consumer, wrapped in a ``Request``: what the decider
uses of a JetStream message (``Delivery``), where each verdict answers the asker
(``events.submit_answer``). ``ack`` comes after the decision's commit, so ``decided`` means the
event is in the log and no command was ever stored; ``nak`` (the job moved under every try) and
``in_progress`` (the log took no append) tell the asker to store the command on the commands
stream, whose redeliveries handle both; ``set_aside`` answers the reason. Only ``SubmitJob`` is
decided here (``refusal``): other commands keep the stream. One delivery each: a request that
conflicts is never retried here. A request answered ``held`` is dropped from the decider's held
list (``owed``), so only the stored copy is decided; so are those left in the inbox when leading
ends (``Door.close``). An I/O edge of the scheduler service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final, Protocol

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from events.commands import OperatorCommand, SubmitJob
from events.natserrors import FAILURES
from events.subjects import Subjects
from events.submit_answer import Answer, encode_answer

log = logging.getLogger(__name__)

OPEN_FLUSH_S: Final = 2
"""How long opening waits for the server to confirm the subscription (a reconnect, say)."""


class Delivered(Protocol):
    """What the decider reads of a delivery's metadata."""

    @property
    def num_delivered(self) -> int:
        """How many times this command has been delivered, this time included."""


class Delivery(Protocol):
    """A command for the decider: a JetStream ``Msg`` pulled from the stream, or a ``Request``."""

    @property
    def data(self) -> bytes:
        """The encoded command."""

    @property
    def subject(self) -> str:
        """Where it came: a command subject or the submit request subject."""

    @property
    def metadata(self) -> Delivered:
        """Its delivery count."""

    async def ack(self) -> None:
        """Decided: its events are in the log."""

    async def nak(self, delay: float | None = None) -> None:
        """Not decided (the job kept moving): deliver it again."""

    async def term(self) -> None:
        """Set aside: never deliver it again."""

    async def in_progress(self) -> None:
        """Held: not decided yet, not lost either."""


class _Once:
    num_delivered: int = 1


class Request:
    """A submit request as a ``Delivery``: each verdict answers the asker, once."""

    def __init__(self, msg: Msg) -> None:
        """Wrap a request received on the submit subject."""
        self._msg = msg
        self.answered = False
        self.reason = ""

    @property
    def data(self) -> bytes:
        """The encoded command."""
        return self._msg.data

    @property
    def subject(self) -> str:
        """The submit request subject."""
        return self._msg.subject

    @property
    def metadata(self) -> Delivered:
        """Asked once: a request is never redelivered."""
        return _Once()

    async def ack(self) -> None:
        """Answer ``decided``: the decision is in the log."""
        await self._answer(Answer.DECIDED)

    async def nak(self, delay: float | None = None) -> None:  # noqa: ARG002 -- Msg's signature
        """Answer ``retry``: the asker stores it on the commands stream, which redelivers."""
        await self._answer(Answer.RETRY)

    async def term(self) -> None:
        """Answer ``set-aside`` with the reason ``refuse`` noted."""
        await self._answer(Answer.SET_ASIDE, self.reason)

    async def in_progress(self) -> None:
        """Answer ``held``: the asker stores it on the commands stream instead of waiting."""
        await self._answer(Answer.HELD)

    def refuse(self, reason: str) -> None:
        """Note why it is being set aside: ``term`` answers with it."""
        self.reason = reason

    async def _answer(self, answer: Answer, reason: str = "") -> None:
        if self.answered:
            return
        self.answered = True
        if not self._msg.reply:  # published, not asked: decided all the same, nobody to answer
            return
        try:
            await self._msg.respond(encode_answer(answer, reason))
        except FAILURES as exc:  # the asker times out and stores the command: nothing is lost
            log.warning("submit answer %s not sent: %s", answer, exc)


def noting(msg: Delivery, reason: str) -> None:
    """Before a set-aside's ``term``: a request answers ``reason`` (a stream message ignores it)."""
    if isinstance(msg, Request):
        msg.refuse(reason)


def owed(msg: Delivery) -> bool:
    """Whether a held delivery is still the decider's to decide (an answered request is not)."""
    return not (isinstance(msg, Request) and msg.answered)


def refusal(msg: Delivery, command: OperatorCommand, subjects: Subjects) -> str:
    """Why a command cannot be decided through the door it came by; empty when it can."""
    if not isinstance(msg, Request) or isinstance(command, SubmitJob):
        return ""
    verb = type(command).__name__
    return (
        f"only SubmitJob is asked on {subjects.submit_request}; send {verb} on the commands stream"
    )


class Door:
    """The submit subscription, open only while leading (``open``/``close``)."""

    def __init__(
        self,
        nc: NatsClient,
        subjects: Subjects,
        inbox: asyncio.Queue[Delivery],
        wake: asyncio.Event,
    ) -> None:
        """Feed requests on ``subjects.submit_request`` into ``inbox``; set ``wake`` for each."""
        self._nc = nc
        self._subjects = subjects
        self._inbox = inbox
        self._wake = wake
        self._sub: Subscription | None = None

    async def open(self) -> None:
        """Start answering submits (leading has started).

        A connection that fails here leaves the door as it is and the scheduler leading: the
        askers meet no responders (or no answer) and store their submits, as with no leader.
        """
        # Requests wait in the subscription's buffer while the inbox is full (nats-py's default
        # limits); one dropped past them is no loss: its asker times out and stores it.
        try:
            self._sub = await self._nc.subscribe(self._subjects.submit_request, cb=self._on_request)
            await self._nc.flush(OPEN_FLUSH_S)  # the server knows us before we say we lead
        except FAILURES as exc:
            log.warning("submit door not confirmed open: %s; submits go to the stream", exc)

    async def close(self) -> None:
        """Stop answering: askers meet no responders and store their commands instead.

        Requests still in the inbox are answered ``held`` and dropped (the decider has stopped):
        their askers store them now, and a later lead never decides a stale copy.
        """
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(*FAILURES):
                await sub.unsubscribe()
        kept: list[Delivery] = []
        while not self._inbox.empty():
            item = self._inbox.get_nowait()
            if isinstance(item, Request):
                await item.in_progress()
            else:
                kept.append(item)
        for item in kept:
            self._inbox.put_nowait(item)

    async def _on_request(self, msg: Msg) -> None:
        await self._inbox.put(Request(msg))
        self._wake.set()
