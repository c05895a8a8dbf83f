"""An operator's retry of a job the scheduler has already forgotten is never lost."""

from __future__ import annotations

import time

import msgspec
import pytest

from events.commands import RetryJob
from events.enums import FailureReason, JobStatus
from events.job import decide
from events.store import Append
from tests.farm import FAST, Farm, scheduler, wait_until
from tests.simagent import Behaviour, Outcome

pytestmark = pytest.mark.anyio
FORGETFUL = msgspec.structs.replace(FAST, core=msgspec.structs.replace(FAST.core, retention_s=0.0))


async def test_a_retry_seen_after_a_snapshot_that_forgot_the_job_is_placed(farm: Farm) -> None:
    """Restart from a snapshot without the job, the retry in the tail: the job runs again.

    The leader that decided the retry died before placing it; its successor knows the job only
    through the retry's ``JobQueued`` and must load the job rather than drop the event.
    """
    failing = await farm.agent("a1", behaviour=Behaviour(outcome=Outcome.FAIL,
                               fail_reason=FailureReason.USER_ERROR))  # fmt: skip
    async with scheduler(farm.store, FORGETFUL) as first:
        await farm.submit("again")
        await farm.wait_status("again", JobStatus.FAILED)

        async def forgotten() -> bool:
            return first.core.state_of("again") is None

        await wait_until(forgotten, "the failed job to leave the scheduler's memory")
        await first.snapshot()
    await failing.stop()

    loaded = await farm.store.load("again")
    retry = RetryJob(id="op-retry", job="again", at=time.time(), by="op")
    state = await farm.state("again")
    (queued,) = decide(state, retry, time.time(), retry.id)
    await farm.store.append(
        Append(
            subject=farm.subjects.job_event("again", "sched"),
            event=queued,
            msg_id=f"{retry.id}:0",
            expected=loaded.last_seq,
            expected_subject=farm.subjects.job_events("again"),
        )
    )
    await farm.agent("a2")
    async with scheduler(farm.store, FORGETFUL):
        done = await farm.wait_status("again", JobStatus.COMPLETED)
    assert (done.agent, done.attempt) == ("a2", 2)
