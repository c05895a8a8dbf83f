"""``ffrtmp auth conf``: the NATS users and permissions of a farm, for nats.conf.

Writes the ``authorization`` block that ``deploy/nats/nats-auth.conf`` includes: one user per
role and one per agent, each allowed only its own subjects (``ffrtmp.authconf`` says which).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from events.errors import InvalidSpec
from events.subjects import Subjects
from ffrtmp.authconf import render
from ffrtmp.cli.common import PrefixOpt
from ffrtmp.config import resolve

app = typer.Typer(help="NATS users and permissions per role.", no_args_is_help=True)


@app.command()
def conf(
    agents: Annotated[str, typer.Option(help="Agent ids, comma-separated.")],
    prefix: PrefixOpt = None,
    file: Annotated[
        Path | None, typer.Option(help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Print the authorization block: users per role and per agent, with their permissions.

    Example: ffrtmp auth conf --agents cpu-1,cpu-2,gpu-1 --file deploy/nats/users.conf
    """
    names = [name.strip() for name in agents.split(",") if name.strip()]
    if not names:
        raise InvalidSpec("--agents", "name at least one agent, e.g. --agents cpu-1,cpu-2")
    text = render(Subjects(resolve({"prefix": prefix}).prefix), names)
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text)
