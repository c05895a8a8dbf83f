"""``ffrtmp scheduler run``: the one decider, or its warm standby.

Start it twice (here or on another machine): the first to take the KV lease decides, the other
follows the log and takes over within the lease time when the first stops or dies. Ctrl-C or
SIGTERM releases the lease, so a standby takes over at once. A connection the server closes
for good is replaced, and the scheduler starts again from the log (``scheduler.session``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import uuid
from collections.abc import Awaitable
from typing import Annotated

import typer

from events.jetstream import JetStreamEventStore
from events.subjects import DEFAULT_PREFIX, Subjects
from ffrtmp.scheduler.core import SchedulerSettings
from ffrtmp.scheduler.service import Scheduler, ServiceSettings
from ffrtmp.scheduler.session import run_connected
from ffrtmp.scheduler.timers import TimerSettings

app = typer.Typer(help="The scheduler: commands in; assignments, rejections, retries out.")

NATS_URL = os.environ.get("FFRTMP_NATS_URL", "nats://127.0.0.1:4222")


@app.command()
def run(
    nats_url: Annotated[
        str, typer.Option("--nats", help="NATS URL (or FFRTMP_NATS_URL).")
    ] = NATS_URL,
    prefix: Annotated[str, typer.Option(help="Subject and stream prefix.")] = DEFAULT_PREFIX,
    name: Annotated[str, typer.Option(help="This process's name in the lease.")] = "",
    heartbeat_s: Annotated[float, typer.Option(help="How often agents heartbeat.")] = 5.0,
    agent_lost_after_s: Annotated[
        float, typer.Option(help="Silence after which an agent is declared lost.")
    ] = 15.0,
    stalled_after_s: Annotated[
        float,
        typer.Option(help="Output not advancing for this long times a running attempt out."),
    ] = 60.0,
    retention_s: Annotated[
        float, typer.Option(help="How long finished jobs stay in memory.")
    ] = 600.0,
    quarantine_after: Annotated[
        int, typer.Option(help="Failures in a row (while others succeed) that quarantine.")
    ] = 3,
    lease_ttl_s: Annotated[
        float, typer.Option(help="Lease time: a standby takes over this long after a crash.")
    ] = 5.0,
    snapshot_every_s: Annotated[float, typer.Option(help="Seconds between snapshots.")] = 30.0,
    ack_wait_s: Annotated[
        float, typer.Option(help="A command a dead leader took returns after this long.")
    ] = 5.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Run the scheduler (leader or standby) until Ctrl-C.

    Example: ffrtmp scheduler run --nats nats://127.0.0.1:4222
    """
    subjects = Subjects(prefix)
    timers = TimerSettings(
        heartbeat_s=heartbeat_s,
        agent_lost_after_s=agent_lost_after_s,
        stalled_after_s=stalled_after_s,
    )
    settings = ServiceSettings(
        core=SchedulerSettings(
            timers=timers, retention_s=retention_s, quarantine_after=quarantine_after
        ),
        lease_ttl_s=lease_ttl_s,
        snapshot_every_s=snapshot_every_s,
        ack_wait_s=ack_wait_s,
    )
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(_run(nats_url, subjects, settings, name))


async def _run(url: str, subjects: Subjects, settings: ServiceSettings, name: str) -> None:
    name = name or f"sched-{uuid.uuid4().hex[:8]}"

    def connect() -> Awaitable[JetStreamEventStore]:
        return JetStreamEventStore.connect(url, subjects, ensure=True)

    def started(scheduler: Scheduler) -> None:
        typer.echo(f"scheduler {scheduler.name} on {url} (prefix {subjects.prefix})")

    await (await connect()).close()  # an unreachable server at start: one line, no retry loop
    task = asyncio.create_task(run_connected(connect, settings, name, started=started))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    typer.echo(f"scheduler {name} stopped")
