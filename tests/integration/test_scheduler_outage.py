"""A command that arrives while the log takes no appends is held, never set aside."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.client import JetStreamContext

from events.commands import SubmitJob
from events.enums import JobStatus
from events.spec import JobSpec
from events.streams import events_stream
from ffrtmp.scheduler.intake import CONSUMER, MAX_DELIVER
from ffrtmp.scheduler.service import OUTAGE_PAUSE_S
from tests.farm import Farm, scheduler, wait_until

pytestmark = pytest.mark.anyio


async def test_a_submit_during_an_outage_lands_when_the_log_is_back(farm: Farm) -> None:
    """Held past the old capped redeliveries, the job is placed once the stream is back.

    The events stream stops taking its subjects for longer than the capped redeliveries would
    last (a cluster electing a stream leader looks the same to the scheduler); the submitted
    job is then queued and placed, and nothing was dead-lettered.
    """
    js, subjects = farm.js, farm.subjects
    config = events_stream(subjects)
    detached = dataclasses.replace(config, subjects=[f"{subjects.prefix}.detached.>"])
    dead_letters = await farm.store.nc.subscribe(subjects.dead_letter("cmd"))
    await farm.agent("a1")
    async with scheduler(farm.store) as sched:
        await js.update_stream(detached)
        try:
            await farm.submit("held")
            pauses = 2 * MAX_DELIVER / OUTAGE_PAUSE_S  # twice the old 1 s x 5 deliveries

            async def long_held() -> bool:
                return sched.stats.outages >= pauses

            await wait_until(long_held, "the scheduler to hold the command through the outage")
        finally:
            await js.update_stream(config)
        done = await farm.wait_status("held", JobStatus.COMPLETED)
    assert done.agent == "a1"
    assert sched.stats.malformed == 0
    assert dead_letters.pending_msgs == 0
    await dead_letters.unsubscribe()


async def test_leading_through_an_outage_binds_the_command_consumer_later(
    farm: Farm, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scheduler that starts leading while the commands stream does not answer keeps trying.

    In a cluster whose stream leader was just killed, binding the durable command consumer timed
    out and the error ended the whole scheduler (the 3-node test saw it under load); it now
    waits for the stream and then takes the commands as usual.
    """
    real = JetStreamContext.pull_subscribe
    refused: list[str] = []

    async def flaky(self: JetStreamContext, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("durable") == CONSUMER and len(refused) < 3:
            refused.append("timeout")
            raise NatsTimeoutError
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(JetStreamContext, "pull_subscribe", flaky)
    await farm.agent("a1")
    async with scheduler(farm.store):
        # Stored, as when no scheduler answered the request: only the intake can take it.
        spec = JobSpec(scenario="720p-h264")
        await farm.store_command(SubmitJob(id="c1", job="bound-late", at=time.time(), spec=spec))
        done = await farm.wait_status("bound-late", JobStatus.COMPLETED)
    assert refused == ["timeout"] * 3
    assert done.agent == "a1"
