"""``ffrtmp bench``: ffrtmp's event store and scheduler, measured on an embedded server.

Each command starts the shipped nats-server (fsync on every write) in a temporary directory,
runs ours and raw in interleaved rounds and prints the medians and their ratio: a table, or one
JSON object with ``--output json``. ``schedule`` measures the scheduler against the issue's targets,
with raw nats-py beside it. ``BENCHMARKS.md`` records the figures and how they were taken.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from ffrtmp.bench.api import ApiBenchSettings, bench_api
from ffrtmp.bench.append import AppendSettings, bench_append
from ffrtmp.bench.assigned import AssignedSettings, bench_assigned
from ffrtmp.bench.cluster import ClusterBenchSettings, bench_cluster
from ffrtmp.bench.commandline import TARGETS as CLI_TARGETS
from ffrtmp.bench.commandline import CliBenchSettings, bench_cli
from ffrtmp.bench.e2e import E2ESettings, bench_e2e
from ffrtmp.bench.fold import bench_fold
from ffrtmp.bench.history import MODES, HistorySettings, bench_history
from ffrtmp.bench.listing import ListingBenchSettings, bench_listing
from ffrtmp.bench.overhead import OverheadSettings, bench_overhead
from ffrtmp.bench.projections import ProjectionsBenchSettings, bench_projections
from ffrtmp.bench.replay import ReplaySettings, bench_replay
from ffrtmp.bench.schedule import TARGETS, ScheduleReport, ScheduleSettings, bench_schedule
from ffrtmp.bench.stats import Comparison
from ffrtmp.cli import chaos
from ffrtmp.cli.common import Output

app = typer.Typer(help="Measure ffrtmp against raw baselines; prints JSON.", no_args_is_help=True)
app.command(name="chaos")(chaos.command)

Messages = Annotated[int, typer.Option("--messages", min=1, help="Messages per measurement.")]
Rounds = Annotated[int, typer.Option("--rounds", min=1, help="Interleaved rounds; medians win.")]
AsOutput = Annotated[
    Output, typer.Option(help="table: for people; json: one JSON object, nothing else.")
]
SteadySeconds = Annotated[
    float, typer.Option(min=0.1, help="Seconds of steady submissions per round.")
]
R = TypeVar("R")
_EXTRA = {
    "raw_default_sync_msgs_per_s": ("raw, default fsync", "{:,.0f}"),
    "sync_always_slowdown": ("fsync-always slowdown", "{:.2f}x"),
}
_APPEND = AppendSettings()
_REPLAY = ReplaySettings()
_SCHEDULE = ScheduleSettings()
_E2E = E2ESettings()
_OVERHEAD = OverheadSettings()
_PROJECTIONS = ProjectionsBenchSettings()
_LISTING = ListingBenchSettings()
_CLI = CliBenchSettings()
_CLUSTER = ClusterBenchSettings()
_API = ApiBenchSettings()


@app.command()
def append(
    messages: Messages = _APPEND.messages,
    rounds: Rounds = _APPEND.rounds,
    history: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated stream sizes: measure the concurrency check's cost at each"
            " (--messages appends per check kind) instead."
        ),
    ] = None,
    default_sync: Annotated[
        bool, typer.Option(help="With --history: measure on the default-fsync server.")
    ] = False,
    consumers: Annotated[
        int,
        typer.Option(
            min=0,
            help="With --history: instead, create this many agents' assignment consumers and"
            " time --messages assignments' fetches.",
        ),
    ] = 0,
    output: AsOutput = Output.TABLE,
) -> None:
    """The store's pipelined append_many against raw publish_async; group commits; fsync's cost.

    Example: ffrtmp bench append --messages 20000 --rounds 5 --output json
    Example: ffrtmp bench append --history 0,100000,1000000 --messages 2000 --rounds 3
    Example: ffrtmp bench append --history 0,100000,1000000 --consumers 1000 --messages 300
    """
    as_json = output is Output.JSON
    if history is not None and consumers:
        settings_ = AssignedSettings(sizes=_sizes(history), consumers=consumers, probes=messages)
        report = _run(lambda: bench_assigned(settings_), as_json, "filling and fetching")
        typer.echo(msgspec.json.encode(report).decode())
        return
    if history is not None:
        _append_history(history, messages, rounds, default_sync=default_sync, as_json=as_json)
        return
    settings = AppendSettings(messages=messages, rounds=rounds)
    _show(_run(lambda: bench_append(settings), as_json, "appending"), as_json)


@app.command()
def replay(
    messages: Messages = _REPLAY.messages,
    rounds: Rounds = _REPLAY.rounds,
    output: AsOutput = Output.TABLE,
) -> None:
    """The store's replay folded into job states against nats-py's ordered consumer.

    Example: ffrtmp bench replay --messages 300000 --rounds 5 --output json
    """
    as_json = output is Output.JSON
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


@app.command()
def schedule(
    jobs: Annotated[int, typer.Option(min=1, help="Queued jobs to place.")] = _SCHEDULE.jobs,
    agents: Annotated[int, typer.Option(min=1, help="Simulated agents.")] = _SCHEDULE.agents,
    rate: Annotated[float, typer.Option(min=1, help="Submissions per second.")] = _SCHEDULE.rate,
    seconds: SteadySeconds = _SCHEDULE.seconds,
    history: Annotated[
        int, typer.Option(min=100, help="Events in the log a restart starts from.")
    ] = _SCHEDULE.history,
    rounds: Rounds = _SCHEDULE.rounds,
    output: AsOutput = Output.TABLE,
) -> None:
    """Placements/s, submit-to-dispatch latency, restart time and memory per queued job.

    Example: ffrtmp bench schedule --jobs 100000 --agents 1000 --history 1000000 --output json
    """
    as_json = output is Output.JSON
    settings = ScheduleSettings(
        jobs=jobs, agents=agents, rate=rate, seconds=seconds, history=history, rounds=rounds
    )
    report = _run(lambda: bench_schedule(settings), as_json, "scheduling")
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
    else:
        _show_schedule(report)


@app.command()
def projections(
    events: Annotated[
        int, typer.Option(min=4, help="Events in the stream the projector rebuilds.")
    ] = _PROJECTIONS.events,
    rounds: Rounds = _PROJECTIONS.rounds,
    rate: Annotated[
        float, typer.Option(min=1, help="Events per second while lag is measured.")
    ] = _PROJECTIONS.rate,
    seconds: Annotated[
        float, typer.Option(min=3, help="Seconds of steady appends for the lag.")
    ] = _PROJECTIONS.seconds,
    output: AsOutput = Output.TABLE,
) -> None:
    """Projector rebuild events/s against a raw ordered consumer, and lag at a steady rate.

    Example: ffrtmp bench projections --events 1000000 --rounds 3 --output json
    """
    as_json = output is Output.JSON
    settings = ProjectionsBenchSettings(events=events, rounds=rounds, rate=rate, seconds=seconds)
    report = _run(lambda: bench_projections(settings), as_json, "rebuilding projections")
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
        return
    table = Table(title=f"ffrtmp bench projections: {report.events:,} events")
    for column in ("", "measured", "target"):
        table.add_column(column, justify="right" if column else "left")
    table.add_row("projector rebuild events/s", f"{report.projector_events_per_s:,.0f}", "")
    table.add_row("raw ordered consumer msgs/s", f"{report.raw_events_per_s:,.0f}", "")
    table.add_row("ratio", f"{report.ratio:.2f}", f">= {report.ratio_target}")
    table.add_row(f"lag p50 s at {report.lag_rate:,.0f}/s", f"{report.lag_p50_s:.3f}", "")
    table.add_row(
        f"lag p99 s at {report.lag_rate:,.0f}/s",
        f"{report.lag_p99_s:.3f}",
        f"<= {report.lag_target_s}",
    )
    Console().print(table)


@app.command()
def e2e(
    jobs: Annotated[int, typer.Option(min=1, help="Jobs in the burst.")] = _E2E.jobs,
    agents: Annotated[int, typer.Option(min=1, help="Agents (no-op engine).")] = _E2E.agents,
    slots: Annotated[int, typer.Option(min=1, help="Slots per agent.")] = _E2E.slots,
    rate: Annotated[float, typer.Option(min=1, help="Steady submissions per second.")] = _E2E.rate,
    seconds: SteadySeconds = _E2E.seconds,
    rounds: Rounds = _E2E.rounds,
    full_log_events: Annotated[
        int,
        typer.Option(min=0, help="Events already in the log for the flat-cost burst (0: skip)."),
    ] = _E2E.full_log_events,
    output: AsOutput = Output.TABLE,
) -> None:
    """Whole jobs through scheduler and agents (FFmpeg skipped): jobs/s, costs, submit-to-start.

    Example: ffrtmp bench e2e --jobs 20000 --rate 200 --output json
    """
    as_json = output is Output.JSON
    settings = E2ESettings(
        jobs=jobs,
        agents=agents,
        slots=slots,
        rate=rate,
        seconds=seconds,
        rounds=rounds,
        full_log_events=full_log_events,
    )
    report = _run(lambda: bench_e2e(settings), as_json, "running jobs end to end")
    _report(
        as_json,
        f"ffrtmp bench e2e: {jobs:,} jobs, {agents} agents",
        report,
        report.targets,
    )


@app.command()
def listing(
    events: Annotated[
        int, typer.Option(min=4, help="Events in the log the listing covers.")
    ] = _LISTING.events,
    rounds: Rounds = _LISTING.rounds,
    output: AsOutput = Output.TABLE,
) -> None:
    """``jobs list`` asked of a projector against folding the whole log here.

    Example: ffrtmp bench listing --events 1000000 --output json
    """
    as_json = output is Output.JSON
    settings = ListingBenchSettings(events=events, rounds=rounds)
    report = _run(lambda: bench_listing(settings), as_json, "listing jobs both ways")
    _report(
        as_json,
        f"ffrtmp bench listing: {report.jobs:,} jobs, {report.events:,} events",
        report,
        {},
    )


@app.command(name="cli")
def cli_(
    runs: Annotated[
        int, typer.Option(min=1, help="Runs of each command; medians win.")
    ] = _CLI.runs,
    bulk_jobs: Annotated[
        int, typer.Option(min=1, help="Specs in the bulk submit's file.")
    ] = _CLI.bulk_jobs,
    output: AsOutput = Output.TABLE,
) -> None:
    """The CLI as an operator waits for it: --help, one submit, a bulk submit, whole processes.

    Example: ffrtmp bench cli --runs 5 --bulk-jobs 10000 --output json
    """
    as_json = output is Output.JSON
    settings = CliBenchSettings(runs=runs, bulk_jobs=bulk_jobs)
    report = _run(lambda: bench_cli(settings), as_json, "timing the CLI against a farm")
    _report(as_json, "ffrtmp bench cli: whole processes", report, CLI_TARGETS)


@app.command()
def api(
    rate: Annotated[float, typer.Option(min=1, help="Offered submits a second.")] = _API.rate,
    requests: Annotated[
        int, typer.Option(min=10, help="Submits a round, each way.")
    ] = _API.requests,
    rounds: Rounds = _API.rounds,
    streams: Annotated[int, typer.Option(min=1, help="Event streams held at once.")] = _API.streams,
    hold_s: Annotated[float, typer.Option(min=1, help="How long they are held.")] = _API.hold_s,
    output: AsOutput = Output.TABLE,
) -> None:
    """The HTTP API: submit latency against the same submit over NATS, and held event streams.

    Example: ffrtmp bench api --rate 200 --streams 100 --hold-s 60 --output json
    """
    as_json = output is Output.JSON
    settings = ApiBenchSettings(
        rate=rate, requests=requests, rounds=rounds, streams=streams, hold_s=hold_s
    )
    report = _run(lambda: bench_api(settings), as_json, "timing the HTTP API against a farm")
    _report(as_json, "ffrtmp bench api: submits and event streams", report, {})


@app.command()
def overhead(
    jobs: Annotated[int, typer.Option(min=1, help="Encodes in the set.")] = _OVERHEAD.jobs,
    scenario: Annotated[str, typer.Option(help="Scenario of each encode.")] = _OVERHEAD.scenario,
    duration_s: Annotated[
        float, typer.Option(min=0.1, help="Seconds of video per encode.")
    ] = _OVERHEAD.duration_s,
    parallel: Annotated[
        int, typer.Option(min=1, help="Encodes at once (the agent's slots).")
    ] = _OVERHEAD.parallel,
    rounds: Rounds = _OVERHEAD.rounds,
    output: AsOutput = Output.TABLE,
) -> None:
    """Real encodes run directly and through ffrtmp: wall times, ratio, the agent's CPU.

    Example: ffrtmp bench overhead --jobs 24 --scenario 720p-h264 --output json
    """
    as_json = output is Output.JSON
    settings = OverheadSettings(
        jobs=jobs, scenario=scenario, duration_s=duration_s, parallel=parallel, rounds=rounds
    )
    report = _run(lambda: bench_overhead(settings), as_json, "encoding directly and through ffrtmp")
    _report(
        as_json,
        f"ffrtmp bench overhead: {jobs} x {scenario}, {duration_s:g} s, {parallel} at once",
        report,
        {"ratio": report.target},
    )


@app.command()
def cluster(
    kills: Annotated[int, typer.Option(min=1, help="Leader kills, one after another.")] = (
        _CLUSTER.kills
    ),
    rate: Annotated[float, typer.Option(min=0.1, help="Jobs submitted per second.")] = (
        _CLUSTER.rate
    ),
    output: AsOutput = Output.TABLE,
) -> None:
    """A 3-node cluster: SIGKILL of the events stream's leader to the next job completed.

    Example: ffrtmp bench cluster --kills 5 --output json
    """
    as_json = output is Output.JSON
    settings = ClusterBenchSettings(kills=kills, rate=rate)
    report = _run(lambda: bench_cluster(settings), as_json, "killing stream leaders")
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
        return
    for kill in report.kills:
        typer.echo(
            f"killed {kill.leader}: next completion after {kill.next_completion_s:.2f} s, "
            f"a job submitted after the kill completed after {kill.new_job_completed_s:.2f} s"
        )
    _show_figures(
        f"ffrtmp bench cluster: {len(report.kills)} kills, {report.completed}/{report.jobs} jobs",
        msgspec.structs.asdict(report),
        {"max_s": 10.0, "new_job_max_s": 10.0},
    )


def _report(as_json: bool, title: str, report: msgspec.Struct, targets: dict[str, float]) -> None:
    """A report as one JSON object, or its numeric figures beside their targets."""
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
        return
    _show_figures(title, msgspec.structs.asdict(report), targets)


def _show_figures(title: str, figures: dict[str, Any], targets: dict[str, float]) -> None:
    """A report's numeric figures beside their targets."""
    table = Table(title=title)
    for column in ("", "measured", "target"):
        table.add_column(column, justify="right" if column else "left")
    for name, value in figures.items():
        if isinstance(value, float):
            target = targets.get(name)
            table.add_row(name, f"{value:,.2f}", "" if target is None else f"{target:,g}")
    Console().print(table)


def _append_history(
    sizes: str, appends: int, rounds: int, *, default_sync: bool, as_json: bool
) -> None:
    """``append --history``: appends/s by kind of concurrency check and stream size."""
    settings = HistorySettings(
        sizes=_sizes(sizes), appends=appends, rounds=rounds, default_sync=default_sync
    )
    report = _run(lambda: bench_history(settings), as_json, "filling and appending")
    if as_json:
        typer.echo(msgspec.json.encode(report).decode())
        return
    table = Table(title=f"ffrtmp bench append --history (fsync {report.fsync}): appends/s")
    table.add_column("events in the stream", justify="right")
    for mode in MODES:
        table.add_column(mode, justify="right")
    for size in settings.sizes:
        by = {r.mode: r.appends_per_s for r in report.rows if r.history == size}
        table.add_row(f"{size:,}", *(f"{by[m]:,.0f}" for m in MODES))
    table.add_row("largest / smallest", *(f"{report.flat.get(m, 0):.2f}" for m in MODES))
    Console().print(table)


def _sizes(sizes: str) -> tuple[int, ...]:
    try:
        return tuple(int(size) for size in sizes.split(","))
    except ValueError as exc:
        raise typer.BadParameter(f"{sizes!r}: sizes are whole numbers") from exc


def _run(start: Callable[[], Coroutine[Any, Any, R]], as_json: bool, doing: str) -> R:
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


_SCHEDULE_ROWS = (
    ("placements_per_s", "placements/s", "{:,.0f}"),
    ("raw_placements_per_s", "raw publish_async pairs/s", "{:,.0f}"),
    ("placements_vs_raw_ratio", "ratio to raw", "{:.2f}"),
    ("pure_placements_per_s", "pure plan + apply/s", "{:,.0f}"),
    ("p50_submit_to_dispatch_ms", "p50 submit → dispatch ms", "{:.1f}"),
    ("p99_submit_to_dispatch_ms", "p99 submit → dispatch ms", "{:.1f}"),
    ("restart_s", "restart s (snapshot + tail)", "{:.3f}"),
    ("restart_s_small_history", "restart s, a tenth of the history", "{:.3f}"),
    ("full_replay_s", "full replay s", "{:.2f}"),
    ("bytes_per_queued_job", "bytes per queued job", "{:,.0f}"),
)


def _show_schedule(report: ScheduleReport) -> None:
    figures = msgspec.structs.asdict(report)
    table = Table(title=f"ffrtmp bench schedule: {report.settings.jobs:,} jobs")
    for column in ("", "measured", "target"):
        table.add_column(column, justify="right" if column else "left")
    for name, label, form in _SCHEDULE_ROWS:
        target = TARGETS.get(name)
        table.add_row(label, form.format(figures[name]), "" if target is None else f"{target:,g}")
    Console().print(table)
