"""The job decider, case by case: lifecycles operators know, and refusals people can read."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from events import job as machine
from events.commands import (
    AgentGone,
    Assign,
    CancelJob,
    Complete,
    ControlDone,
    Fail,
    JobCommand,
    PauseJob,
    Progress,
    RequeueDue,
    RespondToJob,
    ResumeJob,
    RetryJob,
    Start,
    SubmitJob,
    TimeOut,
)
from events.enums import ControlAction, FailureReason, JobStatus, TimeoutKind
from events.job_events import (
    CommandRefused,
    JobCanceled,
    JobControlRequested,
    JobEvent,
    JobQueued,
    JobResults,
    JobRetrying,
)
from events.spec import JobSpec

S = JobStatus
RESULTS = JobResults(wall_s=2.0, frames=60, encode_fps=30.0)


class Run:
    """A job driven through commands, recording its log."""

    def __init__(self, spec: JobSpec | None = None) -> None:
        self.state = machine.initial("j1")
        self.now = 1000.0
        self.log: list[JobEvent] = []
        self.spec = spec or JobSpec(scenario="1080p-h264", max_retries=2)

    def do(self, command: JobCommand) -> list[JobEvent]:
        self.now += 1.0
        produced = machine.decide(self.state, command, self.now, cause="t")
        for event in produced:
            self.state = machine.evolve(self.state, event)
        self.log.extend(produced)
        return produced

    def status(self) -> JobStatus:
        return self.state.status

    def submit(self) -> Run:
        self.do(SubmitJob(id="c-submit", job="j1", at=self.now, spec=self.spec))
        return self

    def running(self, agent: str = "ag1") -> Run:
        self.do(Assign(agent=agent, budget_s=60.0))
        self.do(Start(agent=agent, attempt=self.state.attempt))
        return self


def test_happy_path() -> None:
    """Submit, assign, start, progress, complete: completed with results and 100 %."""
    run = Run().submit().running()
    run.do(Progress(agent="ag1", attempt=1, percent=50.0))
    assert run.state.percent == 50.0
    run.do(Complete(agent="ag1", attempt=1, results=RESULTS))
    assert run.status() is S.COMPLETED
    assert run.state.results == RESULTS
    assert run.state.percent == 100.0


def test_runtime_errors_retry_with_backoff_until_retries_run_out() -> None:
    """Two retries at 5 s then 10 s, and the third failure is final, with its reason."""
    run = Run().submit()
    delays = []
    for _ in range(2):
        run.running()
        (event,) = run.do(
            Fail(agent="ag1", attempt=run.state.attempt, reason=FailureReason.RUNTIME_ERROR)
        )
        assert isinstance(event, JobRetrying)
        delays.append(event.retry_at - event.at)
        assert run.do(RequeueDue()) == []  # before its backoff has passed: nothing
        assert run.status() is S.RETRYING
        run.now = event.retry_at
        run.do(RequeueDue())
        assert run.status() is S.QUEUED
    run.running()
    run.do(Fail(agent="ag1", attempt=3, reason=FailureReason.RUNTIME_ERROR, message="exit 1"))
    assert delays == [5.0, 10.0]
    assert run.status() is S.FAILED
    assert (run.state.reason, run.state.message, run.state.attempt) == (
        FailureReason.RUNTIME_ERROR,
        "exit 1",
        3,
    )


def test_retry_waits_for_its_backoff() -> None:
    """A requeue before the retry is due changes nothing."""
    run = Run().submit().running()
    run.do(Fail(agent="ag1", attempt=1, reason=FailureReason.TIMEOUT))
    assert run.do(RequeueDue()) == []
    assert run.status() is S.RETRYING


def test_user_error_never_retries() -> None:
    """A bad input fails the job at once, whatever retries are left."""
    run = Run().submit().running()
    run.do(Fail(agent="ag1", attempt=1, reason=FailureReason.USER_ERROR, message="no such file"))
    assert run.status() is S.FAILED
    assert run.state.retries == 0


def test_timeout_retries_then_fails() -> None:
    """A timed-out attempt retries while retries are left; with none left the job fails."""
    run = Run(JobSpec(scenario="1080p-h264", max_retries=1)).submit().running()
    run.do(TimeOut(attempt=1, kind=TimeoutKind.STALLED))
    assert run.status() is S.RETRYING
    run.now = run.state.retry_at or 0.0
    run.do(RequeueDue())
    run.running()
    run.do(TimeOut(attempt=2, kind=TimeoutKind.BUDGET))
    assert run.status() is S.FAILED
    assert run.state.reason is FailureReason.TIMEOUT


def test_lost_agent_retries_elsewhere_and_its_late_reports_are_refused() -> None:
    """After its agent is lost the job runs on another, and the zombie's completion is ignored."""
    run = Run().submit().running("ag1")
    run.do(AgentGone(agent="ag1"))
    assert (run.state.status, run.state.reason) == (S.RETRYING, FailureReason.AGENT_LOST)
    run.now = run.state.retry_at or 0.0
    run.do(RequeueDue())
    run.running("ag2")
    assert run.do(Complete(agent="ag1", attempt=1, results=RESULTS)) == []
    assert run.do(Complete(agent="ag1", attempt=2, results=RESULTS)) == []
    run.do(Complete(agent="ag2", attempt=2, results=RESULTS))
    assert run.status() is S.COMPLETED
    assert (run.state.reason, run.state.message) == (None, "")  # the history keeps the loss
    assert any(isinstance(e, JobRetrying) and e.reason is FailureReason.AGENT_LOST for e in run.log)


def test_approval_gate() -> None:
    """A job that asks for approval waits in pending; approval queues it, denial cancels it."""
    spec = JobSpec(scenario="1080p-h264", approval_required=True, approval_prompt="4K on GPU?")
    approved = Run(spec).submit()
    assert (approved.state.status, approved.state.prompt) == (S.PENDING, "4K on GPU?")
    approved.do(RespondToJob(id="c2", job="j1", at=0.0, answer="yes", approve=True))
    assert approved.status() is S.QUEUED
    denied = Run(spec).submit()
    denied.do(RespondToJob(id="c2", job="j1", at=0.0, answer="too costly", approve=False, by="ana"))
    assert denied.status() is S.CANCELED
    assert denied.state.message == "denied by ana: too costly"
    (end,) = denied.log[-1:]
    assert isinstance(end, JobCanceled)  # one event that ends it, for a reader waiting for one
    assert (end.reason, end.answer, end.by) == ("denied", "too costly", "ana")


def test_pause_and_resume_a_running_job_go_through_the_agent() -> None:
    """Pausing a running job records the request; the agent's report makes it paused."""
    run = Run().submit().running()
    (request,) = run.do(PauseJob(id="c2", job="j1", at=0.0))
    assert isinstance(request, JobControlRequested)
    assert (request.action, request.agent) == (ControlAction.PAUSE, "ag1")
    assert run.status() is S.RUNNING
    run.do(ControlDone(agent="ag1", action=ControlAction.PAUSE))
    assert (run.state.status, run.state.resume_to) == (S.PAUSED, S.RUNNING)
    run.do(ResumeJob(id="c3", job="j1", at=0.0))
    run.do(ControlDone(agent="ag1", action=ControlAction.RESUME))
    assert run.status() is S.RUNNING


def test_pause_of_a_queued_job_holds_it_until_resumed() -> None:
    """A paused queued job is not placed; resuming queues it again."""
    run = Run().submit()
    run.do(PauseJob(id="c2", job="j1", at=0.0))
    assert run.status() is S.PAUSED
    assert run.do(Assign(agent="ag1", budget_s=60.0)) == []
    run.do(ResumeJob(id="c3", job="j1", at=0.0))
    assert run.status() is S.QUEUED


def test_cancel_of_an_assigned_job_fences_its_agent() -> None:
    """Canceling before the agent started ends the job; the agent's later start is refused."""
    run = Run().submit()
    run.do(Assign(agent="ag1", budget_s=60.0))
    run.do(CancelJob(id="c2", job="j1", at=0.0, reason="wrong file"))
    assert run.status() is S.CANCELED
    assert run.do(Start(agent="ag1", attempt=1)) == []


def test_repeated_control_request_records_once() -> None:
    """Asking twice to cancel a running job records one request."""
    run = Run().submit().running()
    assert len(run.do(CancelJob(id="c2", job="j1", at=0.0))) == 1
    assert run.do(CancelJob(id="c3", job="j1", at=0.0)) == []
    run.do(ControlDone(agent="ag1", action=ControlAction.CANCEL))
    assert run.status() is S.CANCELED


def _completed() -> Run:
    run = Run().submit().running()
    run.do(Complete(agent="ag1", attempt=1, results=RESULTS))
    return run


@pytest.mark.parametrize(
    ("setup", "command", "says"),
    [
        (
            _completed,
            PauseJob(id="x", job="j1", at=0.0),
            "is completed; only live jobs can be paused",
        ),
        (
            _completed,
            CancelJob(id="x", job="j1", at=0.0),
            "is completed; there is nothing to cancel",
        ),
        (_completed, ResumeJob(id="x", job="j1", at=0.0), "not paused"),
        (Run, CancelJob(id="x", job="j1", at=0.0), "job j1 does not exist"),
        (Run, PauseJob(id="x", job="j1", at=0.0), "does not exist"),
        (
            lambda: Run().submit(),
            SubmitJob(id="x", job="j1", at=0.0, spec=JobSpec(scenario="720p-h264")),
            "submit under a new id",
        ),
        (
            lambda: Run().submit(),
            RespondToJob(id="x", job="j1", at=0.0, approve=True),
            "not awaiting an answer",
        ),
        (lambda: Run().submit(), ResumeJob(id="x", job="j1", at=0.0), "is queued, not paused"),
        (
            Run,
            SubmitJob(id="x", job="j1", at=0.0, spec=JobSpec(scenario="8K-h266")),
            "invalid spec: scenario",
        ),
        (
            lambda: Run(JobSpec(scenario="720p-h264", approval_required=True)).submit(),
            PauseJob(id="x", job="j1", at=0.0),
            "approve or deny it instead",
        ),
    ],
)
def test_impossible_commands_are_refused_with_a_reason(
    setup: Callable[[], Run], command: JobCommand, says: str
) -> None:
    """A command that does not apply is recorded as a refusal a person reads; state holds."""
    run = setup()
    before = run.state
    (refusal,) = run.do(command)
    assert isinstance(refusal, CommandRefused)
    assert says in refusal.reason
    assert (refusal.command_id, refusal.cause, refusal.command) == (
        "x",
        "x",
        type(command).__name__,
    )
    assert run.state == before


def test_paused_time_does_not_count_against_the_budget() -> None:
    """After a pause of a running job, its start moves forward by the time it was paused."""
    run = Run().submit().running()
    started = run.state.started_at
    run.do(PauseJob(id="c2", job="j1", at=0.0))
    run.do(ControlDone(agent="ag1", action=ControlAction.PAUSE))
    run.now += 100.0
    run.do(ResumeJob(id="c3", job="j1", at=0.0))
    run.do(ControlDone(agent="ag1", action=ControlAction.RESUME))
    assert run.state.started_at - started == 102.0  # paused at +2 s, resumed 102 s later


def test_an_attempt_that_ends_while_suspended_is_recorded() -> None:
    """FFmpeg can finish or die just as the agent suspends it: the holder may still report."""
    done = Run().submit().running()
    done.do(PauseJob(id="p", job="j1", at=done.now))
    done.do(ControlDone(agent="ag1", action=ControlAction.PAUSE, attempt=1))
    assert done.status() is S.PAUSED
    assert done.do(Complete(agent="ag2", attempt=1, results=RESULTS)) == []
    done.do(Complete(agent="ag1", attempt=1, results=RESULTS))
    assert done.status() is S.COMPLETED
    crashed = Run().submit().running()
    crashed.do(PauseJob(id="p", job="j1", at=crashed.now))
    crashed.do(ControlDone(agent="ag1", action=ControlAction.PAUSE))
    crashed.do(Fail(agent="ag1", attempt=1, reason=FailureReason.RUNTIME_ERROR))
    assert crashed.status() is S.RETRYING
    assert crashed.state.resume_to is None


def test_a_control_answer_about_an_older_attempt_is_ignored() -> None:
    """The same agent answering for attempt 1 cannot pause attempt 2."""
    run = Run().submit().running()
    run.do(Fail(agent="ag1", attempt=1, reason=FailureReason.RUNTIME_ERROR))
    run.now = run.state.retry_at or run.now
    run.do(RequeueDue())
    run.running("ag1")
    run.do(PauseJob(id="p", job="j1", at=run.now))
    assert run.do(ControlDone(agent="ag1", action=ControlAction.PAUSE, attempt=1)) == []
    assert run.status() is S.RUNNING
    run.do(ControlDone(agent="ag1", action=ControlAction.PAUSE, attempt=2))
    assert run.status() is S.PAUSED


def test_a_failed_job_is_retried_as_a_new_attempt_with_a_fresh_budget() -> None:
    """RetryJob queues a failed job again: attempts keep counting, retries start over."""
    run = Run(JobSpec(scenario="1080p-h264", max_retries=0)).submit().running()
    run.do(Fail(agent="ag1", attempt=1, reason=FailureReason.RUNTIME_ERROR, message="boom"))
    assert run.status() is S.FAILED
    (queued,) = run.do(RetryJob(id="r1", job="j1", at=run.now, by="ops"))
    assert isinstance(queued, JobQueued)
    assert (queued.by, queued.cause) == ("ops", "r1")
    assert "retried by ops after it failed" in queued.reason
    state = run.state
    assert (state.status, state.attempt, state.retries) == (S.QUEUED, 1, 0)
    assert (state.reason, state.message, state.agent, state.finished_at) == (None, "", "", 0.0)
    run.running()
    assert run.state.attempt == 2
    run.do(Complete(agent="ag1", attempt=2, results=RESULTS))
    assert run.status() is S.COMPLETED


def test_a_canceled_job_can_be_retried() -> None:
    """A job canceled while queued runs again after RetryJob."""
    run = Run().submit()
    run.do(CancelJob(id="c", job="j1", at=run.now))
    assert run.status() is S.CANCELED
    run.do(RetryJob(id="r", job="j1", at=run.now))
    assert run.status() is S.QUEUED


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        (Run, "does not exist"),
        (lambda: Run().submit(), "is queued; only failed or canceled"),
        (lambda: Run().submit().running(), "is running; only failed or canceled"),
    ],
)
def test_retry_of_a_live_or_unknown_job_is_refused(setup: Callable[[], Run], says: str) -> None:
    """Only failed or canceled jobs can be retried; anything else is a readable refusal."""
    run = setup()
    before = run.state
    (refusal,) = run.do(RetryJob(id="r", job="j1", at=run.now))
    assert isinstance(refusal, CommandRefused)
    assert says in refusal.reason
    assert run.state == before


def test_a_completed_job_stays_completed() -> None:
    """A completed job cannot be retried, and a stray JobQueued folds to nothing."""
    run = Run().submit().running()
    run.do(Complete(agent="ag1", attempt=1, results=RESULTS))
    (refusal,) = run.do(RetryJob(id="r", job="j1", at=run.now))
    assert isinstance(refusal, CommandRefused)
    done = run.state
    assert machine.evolve(done, JobQueued(job="j1", at=run.now, by="x")) == done
