"""The scheduler's work messages: what each carries, where it goes, the id that dedups it."""

from __future__ import annotations

import msgspec

from events.codec import decode_work
from events.enums import ControlAction, JobStatus, TimeoutKind
from events.job import JobState
from events.job_events import JobTimedOut
from events.spec import JobSpec
from events.subjects import Subjects
from events.work import Control
from ffrtmp.scheduler.outbox import control_message, stop_message

SUBJECTS = Subjects("t")
SPEC = JobSpec(scenario="720p-h264", duration_s=5.0)
HELD = JobState(
    job="j1",
    status=JobStatus.ASSIGNED,
    spec=SPEC,
    attempt=2,
    retries=1,
    agent="a1",
    gpu=0,
    budget_s=30.0,
)


def test_a_control_is_named_by_its_cause_or_else_by_the_jobs_last_sequence() -> None:
    """A control request carries its action; a takeover's re-send is named by the sequence."""
    paused = msgspec.structs.replace(HELD, requested=ControlAction.PAUSE)
    message = control_message(SUBJECTS, paused, "cmd-1", 99, 60.0)
    assert message is not None
    assert (message.subject, message.msg_id) == (SUBJECTS.work("a1"), "j1:2:pause:cmd-1")
    control = decode_work(message.data)
    assert isinstance(control, Control)
    assert (control.action, control.cause, control.attempt) == (ControlAction.PAUSE, "cmd-1", 2)
    again = control_message(SUBJECTS, paused, "", 99, 61.0)
    assert again is not None
    assert again.msg_id == "j1:2:pause:99"


def test_no_control_without_a_request_or_an_agent() -> None:
    """Nothing is owed when no request is outstanding or no agent holds the job."""
    assert control_message(SUBJECTS, HELD, "c", 1, 0.0) is None
    queued = JobState(job="j1", requested=ControlAction.CANCEL)
    assert control_message(SUBJECTS, queued, "c", 1, 0.0) is None
    assert control_message(SUBJECTS, None, "c", 1, 0.0) is None


def test_a_timed_out_attempt_is_told_to_stop() -> None:
    """The agent of a timed-out attempt gets a cancel for that attempt, one per attempt."""
    event = JobTimedOut(
        job="j1",
        at=70.0,
        cause="sched:j1:2:TimeOut",
        agent="a1",
        attempt=2,
        kind=TimeoutKind.BUDGET,
        retry_at=75.0,
    )
    message = stop_message(SUBJECTS, event, 70.0)
    assert (message.subject, message.msg_id) == (SUBJECTS.work("a1"), "j1:2:cancel:timed-out")
    control = decode_work(message.data)
    assert isinstance(control, Control)
    assert (control.action, control.attempt, control.cause) == (
        ControlAction.CANCEL,
        2,
        "sched:j1:2:TimeOut",
    )
