"""An operator command as it goes on the wire: its subject, its payload and its dedup header.

Every sender (the CLI, bulk submit, the benches, the tests' farm) builds its messages here, so
the subject always follows the command's type (``events.commands.VERBS``) and a re-sent command
is always stored once (its ``Nats-Msg-Id`` is its id, ``events.dedup.command``).
"""

from __future__ import annotations

from typing import NamedTuple

from events import dedup
from events.codec import encode
from events.commands import VERBS, OperatorCommand
from events.subjects import MSG_ID, Subjects


class CommandMessage(NamedTuple):
    """What a sender publishes: ``js.publish(*message)`` or by field."""

    subject: str
    payload: bytes
    headers: dict[str, str]


def command_message(subjects: Subjects, command: OperatorCommand) -> CommandMessage:
    """The message that carries ``command``; checking it (``check_command``) is the door's job."""
    return CommandMessage(
        subject=subjects.command(VERBS[type(command)]),
        payload=encode(command),
        headers={MSG_ID: dedup.command(command.id)},
    )
