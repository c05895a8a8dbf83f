"""An assignment read from the log becomes the dispatch its agent runs; nothing else does."""

from __future__ import annotations

import pytest

from agent.assignment import dispatch_of
from events.codec import encode
from events.errors import MalformedMessage
from events.job_events import JobAssigned, JobCanceled
from events.spec import JobSpec
from events.subjects import Subjects
from events.work import Dispatch

SUBJECTS = Subjects("ffrtmp")
SPEC = JobSpec(scenario="720p-h264")
ASSIGNED = JobAssigned(
    job="j1", at=5.0, agent="a1", attempt=2, budget_s=90.0, gpu=1, spec=SPEC, retries=1
)


def test_an_assignment_is_the_dispatch_it_stands_for() -> None:
    """Every fact the old ``Dispatch`` carried comes from the event and its stream sequence."""
    got = dispatch_of("a1", SUBJECTS.assignment("j1", "a1"), encode(ASSIGNED), 77)
    assert got == Dispatch(
        job="j1",
        attempt=2,
        spec=SPEC,
        budget_s=90.0,
        retries=1,
        after_seq=77,
        at=5.0,
        gpu=1,
        agent="a1",
    )


@pytest.mark.parametrize(
    ("subject", "data", "why"),
    [
        (SUBJECTS.assignment("j1", "a2"), encode(ASSIGNED), "holds no assignment"),
        (SUBJECTS.assignment("j1", "a1"), b"{junk", "holds no assignment"),
        (SUBJECTS.assignment("j1", "a1"), encode(JobCanceled(job="j1", at=1.0)), "no assignment"),
        (
            SUBJECTS.assignment("j1", "a1"),
            encode(JobAssigned(job="j1", at=5.0, agent="a1", attempt=2, budget_s=90.0)),
            "carries no spec",
        ),
        (
            SUBJECTS.job_event("j1", "sched"),
            encode(JobAssigned(job="j1", at=5.0, agent="a2", attempt=2, budget_s=9.0, spec=SPEC)),
            "names another agent",
        ),
    ],
)
def test_anything_else_is_malformed(subject: str, data: bytes, why: str) -> None:
    """Another agent's assignment, junk, another event, one without a spec: never run."""
    with pytest.raises(MalformedMessage, match=why):
        dispatch_of("a1", subject, data, 3)
