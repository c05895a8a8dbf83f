"""A valid command whose job keeps moving is set aside as conflicting, not as malformed.

Real conflicts on a real nats-server: the job's agent reports progress (through the agent's own
``JobWriter``, on its own connection) each time the scheduler is about to append to that job,
so every append the scheduler makes expects a sequence the job has already left behind. The
scheduler's store only chooses that moment; the server refuses each append itself.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import pytest
from nats.aio.msg import Msg

from agent.report import JobWriter
from events.codec import accept_command
from events.commands import CancelJob, Progress
from events.deadletter import ERROR_HEADER, KIND_HEADER, Aside
from events.enums import JobStatus
from events.jetstream import JetStreamEventStore
from events.job_events import CommandRefused, JobProgressed
from events.store import Append
from events.subjects import SCHEDULER_WRITER
from events.work import Dispatch
from ffrtmp.client.deadletters import latest
from ffrtmp.scheduler.intake import MAX_DELIVER
from ffrtmp.scheduler.service import CONFLICT_RETRIES
from tests.farm import Farm, scheduler, wait_until
from tests.simagent import Behaviour, Outcome

pytestmark = pytest.mark.anyio
S = JobStatus


class BusyJob(JetStreamEventStore):
    """The scheduler's store; before each of its appends to ``job``, the agent reports progress."""

    job = ""
    writer: JobWriter | None = None
    reports = 0

    async def append_many(self, items: Sequence[Append]) -> list[int | Exception]:
        """Let the agent write first when the scheduler appends to the busy job under the check."""
        if self.writer is not None and any(self._decided_on_job(item) for item in items):
            self.reports += 1
            progress = Progress(agent="a1", attempt=1, percent=min(self.reports, 99) / 1.0)
            assert await self.writer.report(progress, time.time())
        return await super().append_many(items)

    def _decided_on_job(self, item: Append) -> bool:
        return (
            item.subject == self.subjects.job_event(self.job, SCHEDULER_WRITER)
            and item.expected is not None
        )


async def _true(value: bool) -> bool:
    return value


async def test_a_command_that_keeps_conflicting_is_set_aside_as_conflicting(farm: Farm) -> None:
    """Five deliveries of conflicts: dead-lettered as conflicting, counted apart, only refused."""
    await farm.agent("a1", slots=3, behaviour=Behaviour(outcome=Outcome.HANG))
    dead: list[Msg] = []

    async def on_dead(msg: Msg) -> None:
        dead.append(msg)

    await farm.store.nc.subscribe(farm.subjects.dead_letter("cmd"), cb=on_dead)
    url = farm.store.nc.connected_url.geturl() if farm.store.nc.connected_url else ""
    async with (
        await BusyJob.connect(url, farm.subjects) as busy,
        scheduler(busy) as sched,
    ):
        await farm.submit("busy")
        running = await farm.wait_status("busy", S.RUNNING)
        assert running.spec is not None
        dispatch = Dispatch(
            job="busy", attempt=1, spec=running.spec, budget_s=600, after_seq=0, at=0
        )
        busy.job, busy.writer = "busy", JobWriter(farm.store, farm.subjects, "a1", dispatch)
        cancel = CancelJob(id="cancel-busy", job="busy", at=time.time())
        await farm.send(cancel)
        await farm.submit("meanwhile")
        await farm.js.publish(farm.subjects.command("cancel"), b"\xff not json")
        await wait_until(lambda: _true(len(dead) >= 2), "both commands set aside", 40.0)
        await farm.submit("after")
        await farm.wait_status("after", S.RUNNING)
        stats = sched.stats
    assert (stats.conflicting, stats.malformed) == (1, 1)
    assert stats.conflicts >= CONFLICT_RETRIES * MAX_DELIVER
    assert busy.reports >= CONFLICT_RETRIES * MAX_DELIVER
    (letter,) = [m for m in dead if (m.headers or {}).get(KIND_HEADER) == Aside.CONFLICTING]
    assert accept_command(letter.data) == cancel
    assert "kept conflicting" in (letter.headers or {})[ERROR_HEADER]
    assert [(m.headers or {}).get(KIND_HEADER) for m in dead].count(Aside.MALFORMED) == 1
    stored = await latest(farm.client, 10)  # kept in the dead-letter stream, with their kinds
    assert sorted((letter.source, letter.kind) for letter in stored) == [
        ("cmd", Aside.CONFLICTING),
        ("cmd", Aside.MALFORMED),
    ]
    # The cancel decided nothing: the only event it caused is the refusal that says why.
    history = await farm.history("busy")
    (refusal,) = [e for e in history if e.cause == cancel.id]
    assert isinstance(refusal, CommandRefused)
    assert refusal.reason.startswith("conflicting command: ")
    assert "malformed" not in refusal.reason
    assert sum(isinstance(e, JobProgressed) for e in history) == busy.reports
    assert (await farm.state("busy")).status is S.RUNNING
    # The other commands were decided meanwhile and after.
    assert (await farm.state("meanwhile")).status is S.RUNNING
    loaded = {job: (await farm.store.load(job)).events for job in ("busy", "meanwhile")}
    refused_at = next(seq for seq, e in loaded["busy"] if isinstance(e, CommandRefused))
    assert loaded["meanwhile"][0][0] < refused_at
