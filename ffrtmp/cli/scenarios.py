"""``ffrtmp scenarios``: the catalogue of scenario names a job spec may use."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec
import typer
from rich.console import Console
from rich.table import Table

from events.scenarios import ALIASES, SCENARIOS


class Output(StrEnum):
    """How a listing is printed."""

    TABLE = "table"
    JSON = "json"


def command(
    gpu: Annotated[
        bool | None, typer.Option("--gpu/--cpu", help="Only NVENC, or only CPU, scenarios.")
    ] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json.")] = Output.TABLE,
) -> None:
    """List scenarios: resolution, frame rate, codec, encoder, bitrate, GPU.

    Example: ffrtmp scenarios --cpu --output json
    """
    rows = [s for s in SCENARIOS.values() if gpu is None or s.needs_gpu == gpu]
    if output is Output.JSON:
        typer.echo(msgspec.json.encode(rows).decode())
        return
    table = Table("name", "resolution", "fps", "codec", "encoder", "kbps", "gpu")
    for s in rows:
        table.add_row(
            s.name, f"{s.width}x{s.height}", str(s.fps), s.codec, s.encoder,
            str(s.bitrate_kbps), "yes" if s.needs_gpu else "",
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"aliases: <res>[60]-nvenc = <res>[60]-h264-nvenc ({len(ALIASES)} names)")
