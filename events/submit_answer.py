"""The leading scheduler's answer to a submit asked on ``<prefix>.rpc.submit``.

A submit is a request to the leader when one leads: it decides, appends ``JobSubmitted`` (or
``CommandRefused``) and only then answers ``decided``, so the acknowledgement is the durable
event itself and no command is stored. Every other answer means "store it on the commands
stream instead" (``retry``: the job moved under the append; ``held``: the log took no append),
except ``set-aside``: the command does not decode or is not a submit, and ``reason`` says why.
No answer at all (no responders, a timeout) means the same as ``held``. Pure: no I/O.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import msgspec

REASON_CHARS: Final = 512
"""An answer's reason is one line a person reads."""


class Answer(StrEnum):
    """What became of a submit asked of the leader."""

    DECIDED = "decided"  # its event is in the log: read the decision there
    SET_ASIDE = "set-aside"  # malformed or not a submit: never decided, whatever the door
    RETRY = "retry"  # its append conflicted: store it on the commands stream
    HELD = "held"  # the log took no append: store it on the commands stream


class SubmitAnswer(msgspec.Struct, frozen=True, kw_only=True):
    """The reply's payload: the answer and, when set aside, why."""

    answer: Answer
    reason: str = ""


_DECODER: Final = msgspec.json.Decoder(SubmitAnswer)


def encode_answer(answer: Answer, reason: str = "") -> bytes:
    """The reply's bytes; the reason cut to one line."""
    return msgspec.json.encode(SubmitAnswer(answer=answer, reason=reason[:REASON_CHARS]))


def decode_answer(data: bytes) -> SubmitAnswer | None:
    """The answer, or None for bytes that are none (a responder that is not the scheduler)."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        return None
