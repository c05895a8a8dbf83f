"""The one constructor of command messages: subject by type, dedup by id, a payload that decodes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.codec import accept_command, decode_command
from events.command_message import command_message
from events.commands import VERBS, CancelJob, OperatorCommand, QuarantineAgent, SubmitJob
from events.spec import JobSpec
from events.subjects import MSG_ID, Subjects
from tests.strategies import commands

prefixes = st.sampled_from(["ffrtmp", "t1", "tenant-b"])


@given(commands, prefixes)
def test_every_command_goes_to_its_verbs_subject_with_its_id_as_dedup_key(
    command: Any, prefix: str
) -> None:
    """Subject from the command's type, ``Nats-Msg-Id`` its id, and the payload decodes to it."""
    subjects = Subjects(prefix)
    subject, payload, headers = command_message(subjects, command)
    assert subject == f"{prefix}.cmd.{VERBS[type(command)]}"
    assert headers == {MSG_ID: command.id}
    assert decode_command(payload) == command


def test_the_message_of_a_valid_command_is_what_every_door_accepts() -> None:
    """What the CLI sends passes the scheduler's intake unchanged, for a job and an agent verb."""
    subjects = Subjects()
    cases: list[tuple[OperatorCommand, str]] = [
        (SubmitJob(id="c1", job="j1", at=1.0, spec=JobSpec(scenario="720p-h264")), "submit"),
        (CancelJob(id="c2", job="j1", at=2.0, reason="no longer needed"), "cancel"),
        (QuarantineAgent(id="c3", agent="a1", at=3.0), "quarantine"),
    ]
    for command, verb in cases:
        message = command_message(subjects, command)
        assert message.subject == f"ffrtmp.cmd.{verb}"
        assert message.headers == {MSG_ID: command.id}
        assert accept_command(message.payload) == command
