"""``ffrtmp nodes``: the agents, what they can do, how loaded they are, and taking them out.

What an agent can do and whether it is there come from the log (its registration and what the
scheduler recorded); load, GPU readings and live progress come from its last heartbeat. Drain
is a quarantine whose reason starts with "drain": no new work is placed, running jobs finish
(the node reads "draining", then "drained"); ``clear`` ends either. ``remove`` records the
agent's deregistration: the jobs it held retry elsewhere, and it is back only by registering.
"""

from __future__ import annotations

import time
from typing import Annotated, Final

import typer
from rich.table import Table

from events.agent_events import Capabilities
from events.commands import ClearAgent, QuarantineAgent, RemoveAgent
from events.work import Heartbeat
from ffrtmp.cli.common import (
    NatsOpt,
    OutputOpt,
    PrefixOpt,
    Target,
    ago,
    console,
    echo_json,
    operator,
    run,
    target,
    when,
)
from ffrtmp.client.conn import connect
from ffrtmp.client.nodes import Node, NodeRow, drain_reason, nodes, steer_node
from ffrtmp.client.read import resolve_agent
from ffrtmp.client.render import gpu_line

app = typer.Typer(help="The agents: list, describe, drain, quarantine, clear, remove.")
app.info.no_args_is_help = True

GIB: Final = 1024**3
IdArg = Annotated[str, typer.Argument(help="Node (agent) id, or any unique prefix of it.")]


async def _nodes(where: Target) -> list[Node]:
    async with connect(where) as conn:
        return await nodes(conn)


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.0f}%"


@app.command(name="list")
def list_nodes(nats: NatsOpt = None, prefix: PrefixOpt = None, output: OutputOpt = None) -> None:
    """List nodes: status, hardware, slots in use, load from the last heartbeat.

    Example: ffrtmp nodes list
    """
    where = target(nats, prefix, output)
    rows = [node.row for node in run(_nodes(where))]
    if where.json:
        echo_json(rows)
        return
    now = time.time()
    table = Table("ID", "STATUS", "HOST", "CPU", "RAM", "GPU", "SLOTS", "LOAD", "HEARTBEAT",
                  box=None, pad_edge=False)  # fmt: skip
    for row in rows:
        table.add_row(
            row.id, row.status, row.hostname, f"{row.cpu_cores} cores",
            f"{row.ram_bytes / GIB:.1f} GiB" if row.ram_bytes else "", ", ".join(row.gpus),
            f"{len(row.running)}/{row.slots}", _pct(row.cpu_percent),
            ago(row.last_heartbeat_at, now) + " ago" if row.last_heartbeat_at else "never",
        )  # fmt: skip
    out = console()
    out.print(table)
    out.print(f"{len(rows)} nodes", style="dim")


def _gstreamer(caps: Capabilities | None) -> str:
    """GStreamer's version and the elements of ours the node has; empty without GStreamer."""
    if caps is None or not caps.gst_version:
        return ""
    return f"{caps.gst_version}: {', '.join(caps.gst_elements)}"


@app.command()
def describe(
    node_id: IdArg, nats: NatsOpt = None, prefix: PrefixOpt = None, output: OutputOpt = None
) -> None:
    """Describe a node: hardware, GPUs, capabilities, load, running jobs.

    Example: ffrtmp nodes describe cpu-1
    """
    where = target(nats, prefix, output)

    async def go() -> Node:
        async with connect(where) as conn:
            agent = await resolve_agent(conn, node_id)
            return next(node for node in await nodes(conn) if node.row.id == agent)

    node = run(go())
    row, state = node.row, node.state
    if where.json:
        echo_json(row)
        return
    caps = state.capabilities
    beat = row.heartbeat
    fields = [
        ("Node ID", row.id),
        ("Status", row.status),
        ("Quarantine", row.quarantine_reason),
        ("Host", row.hostname),
        ("CPU", f"{row.cpu_model} ({row.cpu_cores} cores)".strip()),
        ("CPU load", _pct(row.cpu_percent)),
        ("Total RAM", f"{row.ram_bytes / GIB:.2f} GiB" if row.ram_bytes else ""),
        ("Used RAM", f"{row.memory_used_bytes / GIB:.2f} GiB" if row.memory_used_bytes else ""),
        ("GPU", gpu_line(beat, state)),
        ("Encoders", ", ".join(row.encoders)),
        ("Filters", ", ".join(caps.filters) if caps else ""),
        ("FFmpeg", caps.ffmpeg_version if caps else ""),
        ("Engines", ", ".join(caps.engines) if caps else ""),
        ("GStreamer", _gstreamer(caps)),
        ("Power", f"{row.power_w:.0f} W" if row.power_w is not None else ""),
        ("Slots", f"{len(row.running)} of {row.slots} in use"),
        ("Running jobs", "\n".join(_running_lines(row, beat))),
        ("Registered", when(state.registered_at)),
        ("Last heartbeat", when(row.last_heartbeat_at)),
    ]
    table = Table("Property", "Value")
    for name, value in fields:
        if value:
            table.add_row(name, value)
    console().print(table)


def _running_lines(row: NodeRow, beat: Heartbeat | None) -> list[str]:
    live = {r.job: r for r in beat.running} if beat else {}
    lines = []
    for job in row.running:
        now = live.get(job)
        extra = ""
        if now is not None:
            fps = f" {now.fps:.1f} fps" if now.fps is not None else ""
            extra = f" {now.percent:.0f}%{fps}" + (" (paused)" if now.paused else "")
        lines.append(job + extra)
    return lines


# --- commands ------------------------------------------------------------------------------


def _agent_command(
    where: Target,
    typed: str,
    make: type[QuarantineAgent | ClearAgent | RemoveAgent],
    reason: str,
    *,
    force: bool = False,
) -> None:
    async def go() -> str:
        async with connect(where) as conn:
            return await steer_node(conn, typed, make, reason, by=operator(), force=force)

    line = run(go())
    if where.json:
        echo_json({"message": line})
    else:
        typer.echo(line)


@app.command()
def drain(
    node_id: IdArg, nats: NatsOpt = None, prefix: PrefixOpt = None, output: OutputOpt = None
) -> None:
    """Drain a node: no new work; its running jobs finish.

    Example: ffrtmp nodes drain cpu-1
    """
    reason = drain_reason(operator())
    _agent_command(target(nats, prefix, output), node_id, QuarantineAgent, reason)


@app.command()
def quarantine(
    node_id: IdArg,
    reason: Annotated[
        str, typer.Option(help="Why, for the record.")
    ] = "quarantined by an operator",
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """Quarantine a node: no new placements until it is cleared.

    Example: ffrtmp nodes quarantine gpu-2 --reason "NVENC errors"
    """
    _agent_command(target(nats, prefix, output), node_id, QuarantineAgent, reason)


@app.command()
def clear(
    node_id: IdArg, nats: NatsOpt = None, prefix: PrefixOpt = None, output: OutputOpt = None
) -> None:
    """Clear a quarantine or a drain: the node takes new work again.

    Example: ffrtmp nodes clear gpu-2
    """
    _agent_command(target(nats, prefix, output), node_id, ClearAgent, "")


@app.command()
def remove(
    node_id: IdArg,
    force: Annotated[bool, typer.Option("--force", help="Even if it still heartbeats.")] = False,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
) -> None:
    """Remove a node from the fleet; the jobs it held retry elsewhere.

    Example: ffrtmp nodes remove cpu-3
    """
    reason = f"removed by {operator()}"
    _agent_command(target(nats, prefix, output), node_id, RemoveAgent, reason, force=force)
