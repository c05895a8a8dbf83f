"""The scheduler's outbox: the messages its decisions owe the agents, and their sending.

A decision that lands may owe its agent a message on the agent's work subject: a control request
for a ``JobControlRequested``, a stop for a ``JobTimedOut``. A ``JobAssigned`` owes none: it is
appended on the agent's assignment subject and read from the log as the dispatch.
Each is an ``Outgoing`` (the agent's work subject, the encoded ``events.work.WorkMessage``),
built from the core's state after the append landed (so it carries what the log says), with a
``Nats-Msg-Id`` from ``events.dedup``: the work stream drops the same message sent twice, which
makes a takeover's re-sending of everything the log says is outstanding safe. A commit's
messages go out together, pipelined, once all its appends are applied; one the server does not
acknowledge is logged, and the next leader's takeover sends it again. An I/O edge of the
scheduler service.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Final

import msgspec
from nats.js.client import JetStreamContext

from events import dedup
from events.codec import encode
from events.enums import ControlAction
from events.job import JobState
from events.job_events import JobTimedOut
from events.subjects import MSG_ID, Subjects
from events.work import Control

log = logging.getLogger(__name__)

ACK_WAIT_S: Final = 5.0
"""How long a work message's acknowledgement is waited for."""


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    """One work message on its way: the agent's subject, the body, the id that dedups it."""

    subject: str
    data: bytes
    msg_id: str


def control_message(
    subjects: Subjects, state: JobState | None, cause: str, seq: int, now: float
) -> Outgoing | None:
    """The job's outstanding control request for its agent; None when there is none.

    Without a ``cause`` (a takeover re-sending it), the job's last sequence ``seq`` names it.
    """
    if state is None or not state.agent or state.requested is None:
        return None
    control = Control(
        job=state.job, attempt=state.attempt, action=state.requested, at=now, cause=cause
    )
    msg_id = dedup.control(state.job, state.attempt, state.requested, cause or str(seq))
    return Outgoing(subject=subjects.work(state.agent), data=encode(control), msg_id=msg_id)


def stop_message(subjects: Subjects, event: JobTimedOut, now: float) -> Outgoing:
    """Tell the agent to stop an attempt that ran out of time, so its slot frees up."""
    control = Control(
        job=event.job,
        attempt=event.attempt,
        action=ControlAction.CANCEL,
        at=now,
        cause=event.cause,
    )
    return Outgoing(
        subject=subjects.work(event.agent),
        data=encode(control),
        msg_id=dedup.stop_timed_out(event.job, event.attempt),
    )


async def publish(
    js: JetStreamContext, messages: Sequence[Outgoing], ack_wait_s: float = ACK_WAIT_S
) -> None:
    """Publish work messages, pipelined; a lost one is re-sent by the next leader's takeover.

    An acknowledgement is waited for ``ack_wait_s`` at most. nats-py's ``publish_async`` gives
    a future with no deadline, and a server killed while it held a message never answers: the
    decider then waited for ever while the lease loop kept renewing, a leader deciding nothing
    (the chaos run found it). A message whose answer did not come is logged like a refused one;
    the job it was for is timed out and retried by the clock if it never reached its agent.
    """
    if not messages:
        return
    acks = [await js.publish_async(m.subject, m.data, headers={MSG_ID: m.msg_id}) for m in messages]
    _, late = await asyncio.wait(acks, timeout=ack_wait_s)
    for ack in late:
        ack.cancel()
    await asyncio.gather(*late, return_exceptions=True)  # nats-py lets their slots go
    for message, ack in zip(messages, acks, strict=True):
        if ack in late or ack.cancelled():
            log.warning("work message to %s not acknowledged in %g s", message.subject, ack_wait_s)
        elif (error := ack.exception()) is not None:
            log.warning("work message to %s not acknowledged: %s", message.subject, error)
