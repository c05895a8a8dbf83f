"""``ffrtmp bench``: measured benchmarks that print JSON (filled in by the benchmark work)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Measure ffrtmp against raw baselines; prints JSON.", no_args_is_help=True)
