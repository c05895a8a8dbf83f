"""The client's reads leave nothing behind on the server, however often they run.

A stream takes at most 1,000 consumers, and an ephemeral consumer outlives its reader by
seconds; a read that made one per call (an API deciding hundreds of commands a second, or
answering hundreds of history requests) stopped every reader of the farm with "maximum
consumers limit reached". Decision waits and histories read by direct get instead.
"""

from __future__ import annotations

import time

import pytest

from events.commands import CancelJob, SubmitJob
from events.spec import JobSpec
from ffrtmp.client.decision import send_and_decide
from ffrtmp.client.jobs import job_history
from ffrtmp.client.read import fold_jobs, job_ids
from tests.farm import Farm, scheduler

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(240)]

READS = 1200
"""More than the stream's limit of 1,000 consumers."""


async def _consumers(farm: Farm) -> int:
    info = await farm.js.stream_info(farm.subjects.events_stream)
    return int(info.state.consumer_count)


async def test_many_decisions_and_histories_create_no_consumer(farm: Farm) -> None:
    """1,200 histories and 300 decided submits: all answered, no consumer left or made."""
    spec = JobSpec(scenario="480p-h264", approval_required=True)
    before = await _consumers(farm)
    async with scheduler(farm.store):
        for index in range(300):
            job = f"many-{index}"
            submit = SubmitJob(id=f"s-{index}", job=job, at=time.time(), spec=spec)
            decided, state = await send_and_decide(farm.client, submit)
            assert decided.decided, decided
            assert state is not None
            assert state.status == "pending"
        for _ in range(READS // 300):
            for index in range(300):
                history = await job_history(farm.client, f"many-{index}")
                assert [e.type for e in history] == ["JobSubmitted"]
        cancel = CancelJob(id="c-0", job="many-0", at=time.time())
        decided, state = await send_and_decide(farm.client, cancel)
        assert decided.decided
        assert decided.events == ["JobCanceled"]
        assert state is not None
        assert state.status == "canceled"
    assert await _consumers(farm) == before


async def test_the_local_fold_reads_assignments_on_their_agents_subjects(farm: Farm) -> None:
    """``fold_jobs`` and ``job_ids`` (no projector) see a job assigned and run to its end."""
    await farm.agent("a1")
    async with scheduler(farm.store):
        await farm.submit("folded")
        await farm.wait_status("folded", "completed")
    folded = (await fold_jobs(farm.client))["folded"]
    assert (folded.status, folded.agent, folded.attempt) == ("completed", "a1", 1)
    assert await job_ids(farm.client) == {"folded"}
