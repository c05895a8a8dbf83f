"""``ffrtmp bench chaos``: kill -9 the farm's parts at random under load, then check the log.

Prints the jobs run, the kills by component, recovery times (kill to the next placement), the
executions counted by the agents and every violation the checker found; JSON with ``--output json``.
Exits 3 when a promise was broken (a violation, or an attempt that ran twice), like
``ffrtmp check``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from ffrtmp.bench.chaos import ChaosReport, ChaosSettings, run_chaos
from ffrtmp.cli.check import EXIT_VIOLATIONS
from ffrtmp.cli.common import Output

_DEFAULTS = ChaosSettings()


def command(
    minutes: Annotated[float, typer.Option(min=0.1, help="Minutes of load and kills.")] = (
        _DEFAULTS.minutes
    ),
    seed: Annotated[int, typer.Option(help="Seed of the kill schedule.")] = _DEFAULTS.seed,
    rate: Annotated[float, typer.Option(min=0.1, help="Jobs submitted per second.")] = (
        _DEFAULTS.rate
    ),
    agents: Annotated[int, typer.Option(min=1, help="Agent processes.")] = _DEFAULTS.agents,
    output: Annotated[
        Output, typer.Option(help="table: for people; json: one JSON object.")
    ] = Output.TABLE,
) -> None:
    """Run a farm of real processes, SIGKILL its parts at seeded moments, check the log.

    Example: ffrtmp bench chaos --minutes 3 --seed 7 --output json
    """
    logging.basicConfig(level=logging.CRITICAL)  # the children log to the run's directory
    settings = ChaosSettings(minutes=minutes, seed=seed, rate=rate, agents=agents)
    if output is Output.JSON:
        report = asyncio.run(run_chaos(settings))
        typer.echo(msgspec.json.encode(report).decode())
    else:
        with Console(stderr=True).status(f"chaos for {minutes:g} min (seed {seed}) …"):
            report = asyncio.run(run_chaos(settings))
        _show(report)
    if not report.ok:
        raise typer.Exit(EXIT_VIOLATIONS)


def _show(report: ChaosReport) -> None:
    console = Console()
    states = ", ".join(f"{n} {s}" for s, n in sorted(report.statuses.items()))
    console.print(
        f"{report.jobs} jobs ({states}), {report.events} events, "
        f"{report.executions} executions, seed {report.seed}"
    )
    table = Table(title="kills and recovery (kill to the next placement)")
    for column in ("component", "kills", "median s", "max s"):
        table.add_column(column, justify="left" if column == "component" else "right")
    for component, recovery in report.recovery.items():
        table.add_row(component, str(recovery.kills), _s(recovery.median_s), _s(recovery.max_s))
    console.print(table)
    for line in [*report.ran_twice, *report.violations] or ["0 violations, nothing ran twice"]:
        console.print(line)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
