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
import uuid
from typing import Annotated

import typer

from events.aio import cancel_on_signals
from events.connection import redact_logs
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.streams import DEFAULT_LEASE_TTL_S, require_streams
from ffrtmp.cli.common import NatsOpt, PrefixOpt, Target, explained, target
from ffrtmp.scheduler.core import SchedulerSettings
from ffrtmp.scheduler.service import Scheduler, ServiceSettings
from ffrtmp.scheduler.session import run_connected
from ffrtmp.scheduler.timers import TimerSettings, timer_problem

app = typer.Typer(help="The scheduler: commands in; assignments, rejections, retries out.")


@app.command()
def run(
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
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
        float,
        typer.Option(help="Expected lease time; the lease bucket's (`streams create`) wins."),
    ] = DEFAULT_LEASE_TTL_S,
    snapshot_every_s: Annotated[float, typer.Option(help="Seconds between snapshots.")] = 30.0,
    ack_wait_s: Annotated[
        float, typer.Option(help="A command a dead leader took returns after this long.")
    ] = 5.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Run the scheduler (leader or standby) until Ctrl-C.

    Example: ffrtmp scheduler run --nats nats://127.0.0.1:4222
    """
    timers = TimerSettings(
        heartbeat_s=heartbeat_s,
        agent_lost_after_s=agent_lost_after_s,
        stalled_after_s=stalled_after_s,
    )
    with explained():
        problem = timer_problem(timers)
        if problem is not None:
            raise FfrtmpError(problem)
    where = target(nats, prefix, None)
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
    redact_logs()
    with explained():
        asyncio.run(_run(where, settings, name))


async def _run(where: Target, settings: ServiceSettings, name: str) -> None:
    subjects = where.subjects
    name = name or f"sched-{uuid.uuid4().hex[:8]}"
    needed = (subjects.commands_stream, subjects.work_stream, subjects.heartbeat_stream)

    async def connect() -> JetStreamEventStore:
        store = await JetStreamEventStore.connect(where.nats or where.url, subjects)
        try:
            await require_streams(store.nc.jetstream(), needed)  # the setup made them, or say so
        except BaseException:
            await store.close()
            raise
        return store

    def started(scheduler: Scheduler) -> None:
        typer.echo(f"scheduler {scheduler.name} on {where.url} (prefix {subjects.prefix})")

    await (await connect()).close()  # an unreachable server at start: one line, no retry loop
    task = asyncio.create_task(run_connected(connect, settings, name, started=started))
    cancel_on_signals(task)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    typer.echo(f"scheduler {name} stopped")
