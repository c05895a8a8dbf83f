"""A submit: asked of the leading scheduler first, stored on the commands stream when none answers.

A submit answered ``decided`` (``events.submit_answer``) has its event in the log already: no
command was stored, one durable write fewer per job. Any other outcome (no responders: no
scheduler leads; no answer in time; ``retry`` or ``held``) stores the very same message (same
command id, same job id, same dedup header) on the commands stream, to be decided when a
scheduler can, exactly as before the door existed. A submit that went both ways is decided
once: the second decision's ``JobSubmitted`` or refusal carries the same dedup id as the
first, so the server stores nothing for it (within the events stream's dedup window; past it,
the job already exists and the copy is refused as a resubmit, never a second job).
``set-aside`` is the one answer that is final and not a decision: the command is malformed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.errors import MaxPayloadError
from nats.js.client import JetStreamContext

from events.command_message import CommandMessage, command_message
from events.commands import SubmitJob
from events.errors import InvalidSpec
from events.natserrors import FAILURES
from events.subjects import Subjects
from events.submit_answer import Answer, decode_answer

REQUEST_TIMEOUT_S: Final = 1.5
"""How long a submit waits for the leader's answer before storing the command instead.

A leader answers in milliseconds (one append); a second and a half rides out a busy placement
round or a burst ahead in its inbox, yet a farm whose scheduler hangs costs each submit only
that much before the durable path takes it.
"""


class Route(StrEnum):
    """How a submit reached the log."""

    DECIDED = "decided"  # the leader decided it: its event is in the log, no command stored
    STORED = "stored"  # stored on the commands stream: decided when a scheduler can


async def submit(
    nc: NatsClient,
    js: JetStreamContext,
    subjects: Subjects,
    command: SubmitJob,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Route:
    """Ask the leader to decide ``command``; store it on the commands stream when it cannot.

    Raises ``InvalidSpec`` when the leader set it aside as malformed; a failed store raises
    nats-py's error for the caller to translate (``Conn.send``).
    """
    return await submit_message(nc, js, subjects, command_message(subjects, command), timeout_s)


async def submit_message(
    nc: NatsClient,
    js: JetStreamContext,
    subjects: Subjects,
    message: CommandMessage,
    timeout_s: float = REQUEST_TIMEOUT_S,
) -> Route:
    """``submit`` of a submit's message already encoded (``Conn.send`` has it for its checks)."""
    try:
        reply = await nc.request(
            subjects.submit_request, message.payload, timeout=timeout_s, headers=message.headers
        )
    except MaxPayloadError:
        raise
    except FAILURES:  # no responders, no answer in time, a reconnect: the durable path
        reply = None
    answer = decode_answer(reply.data) if reply is not None else None
    if answer is not None and answer.answer is Answer.DECIDED:
        return Route.DECIDED
    if answer is not None and answer.answer is Answer.SET_ASIDE:
        raise InvalidSpec("command", answer.reason or "set aside by the scheduler")
    await js.publish(message.subject, message.payload, headers=message.headers)
    return Route.STORED
