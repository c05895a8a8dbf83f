"""The scheduler's work messages: what each carries, where it goes, the id that dedups it."""

from __future__ import annotations

import msgspec

from events.codec import decode_work
from events.enums import ControlAction, JobStatus, TimeoutKind
from events.job import JobState
from events.job_events import JobTimedOut
from events.spec import JobSpec
from events.subjects import Subjects
from events.work import Control, Dispatch
from ffrtmp.scheduler.outbox import control_message, dispatch_message, stop_message

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


def test_a_dispatch_carries_the_attempt_as_the_log_says_to_its_agent() -> None:
    """The dispatch names the attempt, spec, budget and GPU, on a1's subject, dedup j1:2."""
    message = dispatch_message(SUBJECTS, HELD, 17, 50.0)
    assert message is not None
    assert (message.subject, message.msg_id) == (SUBJECTS.work("a1"), "j1:2")
    dispatch = decode_work(message.data)
    assert isinstance(dispatch, Dispatch)
    assert (dispatch.job, dispatch.attempt, dispatch.after_seq, dispatch.at) == ("j1", 2, 17, 50.0)
    assert (dispatch.spec, dispatch.budget_s, dispatch.gpu, dispatch.retries) == (SPEC, 30.0, 0, 1)


def test_no_dispatch_for_a_job_not_held_or_never_submitted() -> None:
    """A job the core does not hold, or one without a spec, owes no dispatch."""
    assert dispatch_message(SUBJECTS, None, 1, 0.0) is None
    assert dispatch_message(SUBJECTS, JobState(job="j1"), 1, 0.0) is None


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
