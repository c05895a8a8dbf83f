"""``ffrtmp bench``: ffrtmp's event store against raw nats-py, measured on an embedded server.

Each command starts the shipped nats-server (fsync on every write) in a temporary directory,
runs ours and raw in interleaved rounds and prints the medians and their ratio: a table, or one
JSON object with ``--json``. ``BENCHMARKS.md`` records the figures and how they were taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from ffrtmp.bench.append import AppendSettings, bench_append
from ffrtmp.bench.fold import bench_fold
from ffrtmp.bench.replay import ReplaySettings, bench_replay
from ffrtmp.bench.stats import Comparison

app = typer.Typer(help="Measure ffrtmp against raw baselines; prints JSON.", no_args_is_help=True)

Messages = Annotated[int, typer.Option("--messages", min=1, help="Messages per measurement.")]
Rounds = Annotated[int, typer.Option("--rounds", min=1, help="Interleaved rounds; medians win.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")]
Bench = Callable[[], Coroutine[Any, Any, Comparison]]
_EXTRA = {
    "raw_default_sync_msgs_per_s": ("raw, default fsync", "{:,.0f}"),
    "sync_always_slowdown": ("fsync-always slowdown", "{:.2f}x"),
}
_APPEND = AppendSettings()
_REPLAY = ReplaySettings()


@app.command()
def append(
    messages: Messages = _APPEND.messages,
    rounds: Rounds = _APPEND.rounds,
    as_json: AsJson = False,
) -> None:
    """The store's pipelined append_many against raw publish_async, and fsync's cost.

    Example: ffrtmp bench append --messages 20000 --rounds 5 --json
    """
    settings = AppendSettings(messages=messages, rounds=rounds)
    _show(_run(lambda: bench_append(settings), as_json, "appending"), as_json)


@app.command()
def replay(
    messages: Messages = _REPLAY.messages,
    rounds: Rounds = _REPLAY.rounds,
    as_json: AsJson = False,
) -> None:
    """The store's replay folded into job states against nats-py's ordered consumer.

    Example: ffrtmp bench replay --messages 300000 --rounds 5 --json
    """
    settings = ReplaySettings(messages=messages, rounds=rounds)
    _show(_run(lambda: bench_replay(settings), as_json, "filling and replaying"), as_json)


@app.command()
def fold(
    jobs: Annotated[
        int, typer.Option(min=1, help="Jobs (four events each) in the stream.")
    ] = 75_000,
    window: Annotated[int, typer.Option(min=1, help="Jobs in flight at once.")] = 1_000,
) -> None:
    """What decode_event and evolve cost per event, alone and in a stream (no server); JSON.

    Example: ffrtmp bench fold --jobs 75000 --window 1000
    """
    typer.echo(msgspec.json.encode(bench_fold(jobs, window)).decode())


def _run(start: Bench, as_json: bool, doing: str) -> Comparison:
    """Run a benchmark coroutine, with a spinner unless the output is JSON."""
    if as_json:
        return asyncio.run(start())
    with Console(stderr=True).status(f"{doing} on an embedded nats-server …"):
        return asyncio.run(start())


def _show(report: Comparison, as_json: bool) -> None:
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
        return
    table = Table(title=f"ffrtmp bench {report.benchmark}: {report.messages:,} messages")
    table.add_column("")
    table.add_column("msgs/s (median)", justify="right")
    table.add_column("per round", justify="right")
    table.add_row("ours", f"{report.ours_msgs_per_s:,.0f}", _rounds(report.ours_rounds))
    table.add_row("raw nats-py", f"{report.raw_msgs_per_s:,.0f}", _rounds(report.raw_rounds))
    for name, value in report.extra.items():
        label, form = _EXTRA.get(name, (name, "{:,.2f}"))
        table.add_row(label, form.format(value), "")
    met = "meets" if report.ratio >= report.target else "misses"
    Console().print(table)
    Console().print(f"ratio {report.ratio:.2f} ({met} the target {report.target})")


def _rounds(rates: list[float]) -> str:
    return " ".join(f"{r / 1000:.0f}k" for r in rates)
