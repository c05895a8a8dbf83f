"""One connection to the farm: the event store, the raw client, JetStream, and the send door.

The send door asks the leading scheduler to decide a submit and stores it as a command when
none answers (``client.submit``); every other command is stored on the commands stream.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Final, Protocol

import msgspec
from nats.aio.client import Client as NatsClient
from nats.errors import MaxPayloadError
from nats.js.client import JetStreamContext

from events.command_message import command_message
from events.commands import AgentCommandBase, OperatorCommandBase, SubmitJob, check_command
from events.connection import NatsOptions
from events.errors import InvalidSpec, StoreUnavailable
from events.ids import following, id_of
from events.jetstream import JetStreamEventStore
from events.natserrors import unavailable
from events.subjects import Subjects
from ffrtmp.client.submit import Route, submit_message

UP_HINT: Final = "is the farm running? Start one with `ffrtmp up`, or point --nats at it"


class Where(Protocol):
    """Where a farm is: its URL for messages (password hidden), its prefix, how to connect."""

    @property
    def url(self) -> str:
        """The URL as shown to a person."""

    @property
    def subjects(self) -> Subjects:
        """The farm's subjects (its prefix)."""

    @property
    def nats(self) -> NatsOptions | None:
        """How to connect (credentials, TLS); None: ``url`` as it is."""


class Address(msgspec.Struct, frozen=True, kw_only=True):
    """A farm's address for a program that has no command line (the API, a bench, a test)."""

    url: str
    subjects: Subjects
    nats: NatsOptions | None = None


class Conn:
    """One connection to the farm: the event store, the raw client and JetStream."""

    def __init__(self, store: JetStreamEventStore, where: Where) -> None:
        """Wrap a connected store."""
        self.store = store
        self.where = where
        self.subjects = where.subjects
        self.nc: NatsClient = store.nc
        self.js: JetStreamContext = store.nc.jetstream(timeout=5.0)

    async def send(self, command: OperatorCommandBase | AgentCommandBase) -> Route:
        """Have an operator command decided, or stored to be; deduplicated by its id.

        A submit is asked of the leading scheduler first and stored on the commands stream only
        when none answers (``client.submit``); every other command is stored. Checked first
        against the limits every door applies (``check_command``): a bad id or string is one
        line here, never a message the scheduler has to set aside.
        """
        check_command(command)  # type: ignore[arg-type]
        message = command_message(self.subjects, command)  # type: ignore[arg-type]
        with unavailable(self.where.url, "the commands stream refused"):
            try:
                if isinstance(command, SubmitJob):
                    return await submit_message(self.nc, self.js, self.subjects, message)
                await self.js.publish(message.subject, message.payload, headers=message.headers)
            except MaxPayloadError:  # acted on: the person's command is too big, not an outage
                size = len(message.payload)
                raise InvalidSpec(
                    "command", f"{size} bytes, over the server's max payload"
                ) from None
        return Route.STORED


@contextlib.asynccontextmanager
async def connect(where: Where) -> AsyncIterator[Conn]:
    """Connect to the farm; unreachable is one line naming the URL and what to do."""
    try:
        store = await JetStreamEventStore.connect(where.nats or where.url, where.subjects)
    except StoreUnavailable as exc:
        if "connection refused" not in exc.hint:
            raise
        raise StoreUnavailable(where.url, UP_HINT) from exc
    async with store:
        yield Conn(store, where)


_last_id: tuple[int, int] | None = None
_id_lock = threading.Lock()


def command_id() -> str:
    """A fresh id for a command (or a job): readable, time-sorted, never this process's last.

    In sequence within a millisecond (``events.ids.following``): drawn at random, a bulk
    submit's ids repeated, and the server's dedup dropped the repeated command.
    """
    global _last_id  # noqa: PLW0603 -- one sequence per process, as the clock is one
    with _id_lock:
        _last_id = following(_last_id, int(time.time() * 1000), os.urandom(3))
        return id_of(*_last_id)
