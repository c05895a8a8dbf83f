"""``ffrtmp top``: the farm live in a terminal (queues, agents, running jobs, recent failures).

Each refresh folds only the events appended since the last one and reads the agents' last
heartbeats, so it stays cheap on a long log. ``--once`` prints one frame and exits (for scripts
and tests; ``--output json`` prints the frame as JSON, documented in docs/api.md).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.live import Live

from ffrtmp.cli.common import NatsOpt, OutputOpt, PrefixOpt, Target, console, echo_json, run, target
from ffrtmp.cli.dashboard import Watcher, render
from ffrtmp.client.conn import connect


async def _top(where: Target, *, once: bool, interval_s: float) -> None:
    watcher = Watcher()
    async with connect(where) as conn:
        shown = await watcher.refresh(conn)
        if once:
            if where.json:
                echo_json(shown)
            else:
                console().print(render(shown))
            return
        with Live(render(shown), console=console(), auto_refresh=False, screen=False) as live:
            while True:
                await asyncio.sleep(interval_s)  # the refresh period of a live view
                live.update(render(await watcher.refresh(conn)), refresh=True)


def command(
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    interval_s: Annotated[float, typer.Option(min=0.1, help="Seconds between refreshes.")] = 1.0,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """Watch the farm live: queues, agents with load and GPU temperature, jobs, failures.

    Example: ffrtmp top --nats nats://127.0.0.1:4222
    """
    where = target(nats, prefix, output)
    run(_top(where, once=once or where.json, interval_s=interval_s))
