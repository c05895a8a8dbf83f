"""``ffrtmp up``: the whole farm on one machine, in one command, stopped in order on Ctrl-C.

It starts the embedded NATS server (data under ``--data-dir``) and creates the streams, then
the scheduler, the projector, the exporter and ``--agents`` local agents as child processes
(``ffrtmp.farm`` is the plan, ``ffrtmp.supervisor`` runs it), waits until each answers (the
scheduler holds the lease, the projector answers SQL, the exporter serves /metrics, every agent
is registered), prints where everything is, and shows the farm live (``--no-live``, or a
stdout that is not a terminal, prints a plain log of what happens instead). A child that dies
is reported and restarted with a doubling delay until it starts too often (``ffrtmp.restart``;
``--no-restart`` leaves it down); the live view and the log say which. Ctrl-C or SIGTERM
stops the agents first (they drain), then the scheduler, projector and exporter, and NATS
last; whatever outlives its deadline is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Final

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from agent.main import media_roots
from events.errors import FfrtmpError
from events.jetstream import JetStreamEventStore
from events.subjects import Subjects
from ffrtmp.api.auth import is_loopback, load_tokens
from ffrtmp.cli.common import Output, PrefixOpt, Target, console, explained
from ffrtmp.cli.dashboard import Watcher, render, statuses, transitions
from ffrtmp.cli.probes import projector_answers
from ffrtmp.client.conn import Conn
from ffrtmp.client.decision import scheduler_leads
from ffrtmp.client.probe import http_ok
from ffrtmp.config import resolve, without_credentials
from ffrtmp.farm import (
    DEFAULT_API_PORT,
    DEFAULT_DATA_DIR,
    LOOPBACK,
    FarmSettings,
    Layout,
    Role,
    announcement,
    api_url,
    metrics_url,
    nats_url,
    plan,
)
from ffrtmp.natsd import NatsServer, NatsSettings, free_port, port_in_use
from ffrtmp.restart import NO_RESTART, GiveUp, Restart, RestartPolicy
from ffrtmp.scrape_targets import agent_ports, write_targets
from ffrtmp.supervisor import Exit, Restarted, Supervisor

CLI: Final = (sys.executable, "-P", "-m", "ffrtmp.cli")
"""The children run the installed ffrtmp: ``-P`` keeps the current directory off sys.path."""
REFRESH_S: Final = 1.0
CHILDREN_CONFIG: Final = (
    "# ffrtmp up's children take their settings as flags: the user's config file, with its\n"
    "# user, password and TLS for farms elsewhere, must not reach this farm (it has no auth).\n"
)
PROBE_S: Final = 0.25


class Farm:
    """One running farm: its NATS server, its children, and a connection to watch it."""

    def __init__(
        self, settings: FarmSettings, layout: Layout, policy: RestartPolicy | None = None
    ) -> None:
        """Plan the farm; nothing starts until ``start``."""
        self.settings, self.layout = settings, layout
        self.subjects = Subjects(settings.prefix)
        self.nats = NatsServer(
            NatsSettings(
                port=settings.nats_port, store_dir=layout.nats, http_port=None, host=settings.host
            )
        )
        self.children = plan(settings, layout, CLI)
        # The local farm has no auth: a user or TLS setting for another farm must not reach it,
        # from the environment or from the user's config file (the children get their
        # settings as flags, and a config file of up's own that sets nothing).
        env = without_credentials(os.environ) | {"FFRTMP_CONFIG": layout.children_config}
        self.supervisor = Supervisor(self.children, Path(layout.logs), env, policy)
        self.watcher = Watcher()

    def prepare(self) -> None:
        """Make the agents' working directories and the children's config file."""
        Path(self.layout.root).mkdir(parents=True, exist_ok=True)
        Path(self.layout.children_config).write_text(CHILDREN_CONFIG)
        for child in self.children:
            if child.role is Role.AGENT:
                Path(self.layout.agent_dir(child.name)).mkdir(parents=True, exist_ok=True)
        write_targets(self.layout, self.children)

    async def start(self) -> JetStreamEventStore:
        """NATS and the streams first, then every child; return a connected store."""
        self.nats.spawn()
        await self.nats.wait_ready()
        store = await JetStreamEventStore.connect(self.nats.url, self.subjects, ensure=True)
        self.supervisor.start()
        return store

    def stop(self) -> list[Exit]:
        """Children in order, then NATS."""
        ended = self.supervisor.stop(self.settings.stop_timeout_s)
        self.nats.stop()
        return ended

    def changes(self) -> list[Exit | Restarted]:
        """Children that ended or were restarted since the last call; NATS ending is an error."""
        if not self.nats.running:
            raise FfrtmpError(f"nats-server stopped by itself; see {self.nats.log_path}")
        return self.supervisor.poll()


# --- readiness -----------------------------------------------------------------------------


def _probes(farm: Farm, conn: Conn) -> dict[str, Callable[[], Awaitable[bool]]]:
    """One readiness condition per child."""
    agents = {c.name for c in farm.children if c.role is Role.AGENT}

    async def agents_online() -> bool:
        await farm.watcher.refresh(conn)
        view = farm.watcher.view
        return all(a in view.agents and view.agents[a].status == "online" for a in agents)

    async def exporter() -> bool:
        return await asyncio.to_thread(http_ok, metrics_url(farm.settings))

    async def api() -> bool:
        return await asyncio.to_thread(http_ok, api_url(farm.settings) + "readyz")

    probes: dict[str, Callable[[], Awaitable[bool]]] = {
        "scheduler": lambda: scheduler_leads(conn),
        "projector": lambda: projector_answers(conn),
        "exporter": exporter,
    }
    if farm.settings.api_port is not None:
        probes["api"] = api
    if agents:
        probes["agents"] = agents_online
    return probes


async def wait_ready(farm: Farm, conn: Conn, timeout_s: float, say: Callable[[str], None]) -> None:
    """Wait until every child answers; a child dying or the deadline is a one-line error."""
    pending = _probes(farm, conn)
    deadline = time.monotonic() + timeout_s
    while pending:
        for ended in (c for c in farm.changes() if isinstance(c, Exit)):
            raise FfrtmpError(
                f"{ended.name} {ended.describe()} at start: {farm.supervisor.log_tail(ended.name)}"
            )
        for name, probe in list(pending.items()):
            if await probe():
                say(f"{name} ready")
                del pending[name]
        if pending and time.monotonic() > deadline:
            names = ", ".join(pending)
            raise FfrtmpError(
                f"not ready after {timeout_s:g} s: {names}; see the logs in {farm.layout.logs}"
            )
        await asyncio.sleep(PROBE_S)  # a poll interval; the conditions are the probes


# --- watching ------------------------------------------------------------------------------


def _components(farm: Farm) -> Table:
    table = Table("COMPONENT", "PID", "STATE", "RESTARTS", box=None, pad_edge=False)
    table.add_row("nats", "", "[green]up[/]" if farm.nats.running else "[red]down[/]", "")
    pids, supervisor = farm.supervisor.pids(), farm.supervisor
    for child in farm.children:
        state = supervisor.state(child.name)
        colour = "green" if state == "up" else "yellow" if state.startswith("restarting") else "red"
        restarts = str(supervisor.restarts(child.name))
        table.add_row(child.name, str(pids.get(child.name, "")), f"[{colour}]{state}[/]", restarts)
    return table


def _screen(farm: Farm, header: list[str], body: RenderableType) -> RenderableType:
    return Group(Text("\n".join(header)), Text(), _components(farm), Text(), body)


def by_hand(farm: Farm, name: str) -> str:
    """The command that runs a component of the farm by hand, as ``up`` ran it."""
    child = next(c for c in farm.children if c.name == name)
    return shlex.join(["ffrtmp", *child.argv[len(CLI) :]])


def _report(change: Exit | Restarted, farm: Farm) -> str:
    """One line of ``up``'s log for a child that died or was restarted."""
    if isinstance(change, Restarted):
        return f"{change.name} restarted (restart {change.number}, pid {change.pid})"
    log = farm.supervisor.log_path(change.name)
    match change.then:
        case Restart(after_s=after_s, number=number):
            then = f"restart {number} in {after_s:g} s"
        case GiveUp(why=why):
            then = f"not restarted: {why}; by hand: {by_hand(farm, change.name)}"
        case None:
            then = "stopping"
    return (
        f"! {change.name} {change.describe()} ({then}; log {log}): "
        f"{farm.supervisor.log_tail(change.name, 3)}"
    )


async def watch(farm: Farm, conn: Conn, header: list[str], out: Console, *, live: bool) -> None:
    """Show the farm until cancelled: a live screen, or a plain log of changes."""
    if not live:
        await farm.watcher.refresh(conn)
        seen = statuses(farm.watcher.view)  # the log so far was there before: print what is new
        while True:
            await farm.watcher.refresh(conn)
            lines = [_report(e, farm) for e in farm.changes()]
            lines += transitions(seen, farm.watcher.view)
            for line in lines:
                out.print(line, soft_wrap=True)
            await asyncio.sleep(REFRESH_S)  # the refresh period of the log
    notes: list[str] = []
    with Live(console=out, auto_refresh=False, screen=False) as screen:
        while True:
            shown = await farm.watcher.refresh(conn)
            notes += [_report(e, farm) for e in farm.changes()]
            body = Group(render(shown), *(Text(n, style="red") for n in notes[-5:]))
            screen.update(_screen(farm, header, body), refresh=True)
            await asyncio.sleep(REFRESH_S)  # the refresh period of the live view


# --- the command ---------------------------------------------------------------------------


def _check_ports(settings: FarmSettings) -> None:
    agents = [(port, "--agent-port-base", "another agent") for port in settings.agent_ports]
    wanted = [
        (settings.nats_port, "--nats-port", "another farm or nats-server"),
        (settings.metrics_port, "--metrics-port", "another exporter, or Prometheus"),
        *([(settings.api_port, "--api-port", "another ffrtmp API")] if settings.api_port else []),
        *agents,
    ]
    flags: dict[int, str] = {}
    for port, flag, _ in wanted:
        if port in flags:
            raise FfrtmpError(f"port {port} is asked for twice ({flags[port]} and {flag})")
        flags[port] = flag
    for port, flag, what in wanted:
        if port_in_use(port):
            raise FfrtmpError(
                f"port {port} is already in use ({what}?): stop it, or choose another with {flag}"
            )


def _check_api_auth(settings: FarmSettings) -> None:
    """An API beyond loopback needs tokens, or ``ffrtmp api run`` refuses to start.

    Said now, in one line, instead of a farm that stops because its API could not start.
    """
    if settings.api_port is None or is_loopback(settings.host):
        return
    if settings.api_tokens_file is None and not load_tokens(None):
        raise FfrtmpError(
            f"--host {settings.host} would serve the HTTP API to the network without tokens: "
            "give --api-tokens-file (`ffrtmp api token` makes one), or --api-port 0 for no API"
        )


async def _run(farm: Farm, *, live: bool, ready_timeout_s: float) -> None:
    out = console()
    store: JetStreamEventStore | None = None
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 -- always inside asyncio.run
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _once(task.cancel, loop))
    try:
        out.print(f"starting the farm in {farm.layout.root} …")
        store = await farm.start()
        where = Target(url=nats_url(farm.settings), subjects=farm.subjects, output=Output.TABLE)
        conn = Conn(store, where)
        await wait_ready(farm, conn, ready_timeout_s, lambda line: out.print(f"  {line}"))
        header = announcement(farm.settings, farm.layout, farm.children)
        out.print("\n".join(["", "farm ready", *header, ""]), soft_wrap=True)
        await watch(farm, conn, header, out, live=live)
    except asyncio.CancelledError:
        out.print("stopping: agents drain first, NATS stops last …")
    finally:
        if store is not None:
            with contextlib.suppress(Exception):
                await store.close()
        for ended in await asyncio.to_thread(farm.stop):
            if ended.code not in {0, -signal.SIGTERM}:
                out.print(f"  {ended.name} {ended.describe()} while stopping")
    out.print("farm stopped")


def _once(action: Callable[[], object], loop: asyncio.AbstractEventLoop) -> Callable[[], None]:
    """A signal handler that acts on the first signal and ignores the rest while stopping."""

    def handler() -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: None)
        action()

    return handler


def command(
    data_dir: Annotated[
        Path, typer.Option(help="Where NATS, the projections and the logs live.")
    ] = Path(DEFAULT_DATA_DIR),
    nats_port: Annotated[int, typer.Option(help="NATS client port.")] = 4222,
    metrics_port: Annotated[int, typer.Option(help="The exporter's /metrics port.")] = 9090,
    agents: Annotated[int, typer.Option(min=0, help="Local agents to run.")] = 2,
    agent_port_base: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Agent i's health port is this + i - 1 (default: free ports).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Where NATS, the exporter and the agents listen; 0.0.0.0 opens the farm, "
            "which has no auth, to the network."
        ),
    ] = LOOPBACK,
    prefix: PrefixOpt = None,
    live: Annotated[
        bool, typer.Option("--live/--no-live", help="Live view on a terminal, or a plain log.")
    ] = True,
    ready_timeout_s: Annotated[
        float, typer.Option(help="How long the components may take to come up.")
    ] = 60.0,
    stop_timeout_s: Annotated[
        float, typer.Option(help="How long each group may take to stop before it is killed.")
    ] = 20.0,
    restart: Annotated[
        bool,
        typer.Option(
            "--restart/--no-restart",
            help="Restart a component that dies (1 s, 2 s, 4 s … up to 30 s; at most 5 starts a"
            " minute), or leave it down.",
        ),
    ] = True,
    api_port: Annotated[
        int, typer.Option(help="The HTTP API and web console's port (0: no API).")
    ] = DEFAULT_API_PORT,
    api_tokens_file: Annotated[
        Path | None,
        typer.Option(
            envvar="FFRTMP_API_TOKENS_FILE",
            help="The API's bearer tokens (role:name:token a line); needed with a --host other "
            "than 127.0.0.1.",
        ),
    ] = None,
    media_root: Annotated[
        list[Path] | None,
        typer.Option("--media-root", help="Agents read and write files only under it (repeat)."),
    ] = None,
) -> None:
    """Run a whole farm here: NATS, scheduler, projector, exporter and local agents.

    Example: ffrtmp up --agents 2 --data-dir ./ffrtmp-data   (then, elsewhere: ffrtmp demo)
    """
    with explained():
        settings = FarmSettings(
            data_dir=str(data_dir),
            nats_port=nats_port,
            metrics_port=metrics_port,
            agents=agents,
            prefix=resolve({"prefix": prefix}).prefix,  # flag, environment, config file
            agent_ports=agent_ports(agents, agent_port_base, free_port),
            stop_timeout_s=stop_timeout_s,
            media_roots=media_roots(media_root or []),
            host=host,
            api_port=api_port or None,
            api_tokens_file=None if api_tokens_file is None else str(api_tokens_file.resolve()),
        )
        farm = Farm(settings, Layout.under(settings.data_dir), None if restart else NO_RESTART)
        farm.nats.refuse_stale()
        _check_ports(settings)
        _check_api_auth(settings)
        farm.prepare()
        asyncio.run(_run(farm, live=live and sys.stdout.isatty(), ready_timeout_s=ready_timeout_s))
