"""The one-command farm's plan: which processes ``ffrtmp up`` runs, with what argv, in what order.

Pure: settings and paths in, child specs and text out, so what ``up`` starts and the order it
stops them in are tested without starting anything. ``ffrtmp.supervisor`` runs the plan; the
embedded NATS server is not a child here (``ffrtmp.natsd`` runs it) because it starts first,
before anything can connect, and stops last, after everything that writes to it.

Stop order is the reverse of dependence: agents drain first (their running attempts finish or
are handed back to the scheduler), then the scheduler, the projector and the exporter, and NATS
last.
"""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path
from typing import Final

import msgspec

from events.subjects import DEFAULT_PREFIX

DEFAULT_DATA_DIR: Final = "./ffrtmp-data"
DEFAULT_NATS_PORT: Final = 4222
DEFAULT_API_PORT: Final = 8080
LOOPBACK: Final = "127.0.0.1"
_ANY: Final = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 -- recognised, not bound
AGENT_PREFIX: Final = "local"
"""Local agents are ``local-1`` … ``local-N``."""
AGENT_HEARTBEAT_S: Final = 1.0
QUEUE_SQL: Final = "SELECT * FROM queue_depth"


class Role(IntEnum):
    """A child's kind; the value is its place in the stop order (lowest stops first)."""

    API = 0
    AGENT = 1
    SCHEDULER = 2
    PROJECTOR = 3
    EXPORTER = 4


class FarmSettings(msgspec.Struct, frozen=True, kw_only=True):
    """What ``ffrtmp up`` was asked for."""

    data_dir: str = DEFAULT_DATA_DIR
    nats_port: int = DEFAULT_NATS_PORT
    metrics_port: int = 9090
    agents: int = 2
    prefix: str = DEFAULT_PREFIX
    agent_ports: tuple[int, ...] = ()
    """Each agent's health port, one per agent (``up`` picks free ones)."""
    stop_timeout_s: float = 20.0
    """How long each group of children may take to stop before it is killed."""
    media_roots: tuple[str, ...] = ()
    """Directories the local agents may read and write files under (none: anywhere)."""
    host: str = LOOPBACK
    """Where NATS, the exporter and the agents' health ports listen: this machine only."""
    api_port: int | None = DEFAULT_API_PORT
    """The HTTP API and console's port; None: no API."""
    api_tokens_file: str | None = None
    """The API's bearer tokens (required when ``host`` is not loopback)."""


class Layout(msgspec.Struct, frozen=True, kw_only=True):
    """Where the farm keeps its data, all under one directory the user names."""

    root: str

    @classmethod
    def under(cls, data_dir: str) -> Layout:
        """The layout under ``data_dir``, made absolute so children agree whatever their cwd."""
        return cls(root=str(Path(data_dir).resolve()))

    @property
    def nats(self) -> str:
        """The JetStream store."""
        return str(Path(self.root) / "nats")

    @property
    def projector_db(self) -> str:
        """The projector's DuckDB file."""
        return str(Path(self.root) / "projector.duckdb")

    @property
    def exporter(self) -> str:
        """The exporter's own projection."""
        return str(Path(self.root) / "exporter")

    @property
    def logs(self) -> str:
        """One log file per child."""
        return str(Path(self.root) / "logs")

    @property
    def children_config(self) -> str:
        """The config file the children read: up's own, setting nothing."""
        return str(Path(self.root) / "children.toml")

    @property
    def prometheus(self) -> str:
        """Prometheus file_sd targets of the exporter and the agents (``ffrtmp.scrape_targets``)."""
        return str(Path(self.root) / "prometheus")

    def agent_dir(self, agent: str) -> str:
        """An agent's working directory (its outputs and attempt logs)."""
        return str(Path(self.root) / "agents" / agent)


class Child(msgspec.Struct, frozen=True, kw_only=True):
    """One process ``up`` starts."""

    name: str
    role: Role
    argv: tuple[str, ...]
    port: int | None = None
    """The HTTP port it serves (the exporter's metrics, an agent's health), if any."""


def reach(settings: FarmSettings) -> str:
    """The address to connect to: the one listened on, or loopback when that is every one."""
    return LOOPBACK if settings.host in _ANY else settings.host


def nats_url(settings: FarmSettings) -> str:
    """Where every child and the user connect."""
    return f"nats://{reach(settings)}:{settings.nats_port}"


def metrics_url(settings: FarmSettings) -> str:
    """The exporter's metrics."""
    return f"http://{reach(settings)}:{settings.metrics_port}/metrics"


def api_url(settings: FarmSettings) -> str:
    """The HTTP API and console (empty when the farm runs none)."""
    if settings.api_port is None:
        return ""
    return f"http://{reach(settings)}:{settings.api_port}/"


def agent_names(count: int) -> list[str]:
    """The local agents' ids."""
    return [f"{AGENT_PREFIX}-{i}" for i in range(1, count + 1)]


def agent_argv(
    settings: FarmSettings, layout: Layout, agent: str, health_port: int
) -> tuple[str, ...]:
    """``ffrtmp agent run`` for one local agent (after the ``ffrtmp`` part).

    It drains within half the stop deadline, so a clean stop never needs the SIGKILL; it
    heartbeats every second, so the live view's progress moves while a short job runs.
    """
    return (
        "agent", "run", "--nats", nats_url(settings), "--prefix", settings.prefix,
        "--id", agent, "--health-port", str(health_port), "--health-host", settings.host,
        "--work-dir", layout.agent_dir(agent),
        "--heartbeat-s", f"{AGENT_HEARTBEAT_S:g}", "--drain-grace-s",
        f"{settings.stop_timeout_s / 2:g}",
        *(arg for root in settings.media_roots for arg in ("--media-root", root)),
    )  # fmt: skip


def client_flags(settings: FarmSettings) -> str:
    """The flags a CLI command needs to reach this farm (none on the default port and prefix)."""
    flags = "" if settings.nats_port == DEFAULT_NATS_PORT else f" --nats {nats_url(settings)}"
    if settings.prefix != DEFAULT_PREFIX:
        flags += f" --prefix {settings.prefix}"
    return flags


def plan(settings: FarmSettings, layout: Layout, cli: tuple[str, ...]) -> list[Child]:
    """Every child, in start order; ``cli`` is how to run ``ffrtmp`` (e.g. python -m ffrtmp.cli)."""
    url, prefix = nats_url(settings), settings.prefix
    common = ("--nats", url, "--prefix", prefix)
    exporter_flags = (
        *("--metrics-port", str(settings.metrics_port), "--host", settings.host),
        *("--data-dir", layout.exporter),
    )
    children = [
        Child(name="scheduler", role=Role.SCHEDULER, argv=(*cli, "scheduler", "run", *common)),
        Child(
            name="projector",
            role=Role.PROJECTOR,
            argv=(*cli, "projector", "run", "--db", layout.projector_db, *common),
        ),
        Child(
            name="exporter",
            role=Role.EXPORTER,
            argv=(*cli, "exporter", "run", *common, *exporter_flags),
            port=settings.metrics_port,
        ),
    ]
    if settings.api_port is not None:
        tokens = (
            () if settings.api_tokens_file is None else ("--tokens-file", settings.api_tokens_file)
        )
        api = ("--host", settings.host, "--api-port", str(settings.api_port), *tokens)
        children.append(
            Child(
                name="api",
                role=Role.API,
                argv=(*cli, "api", "run", *common, *api),
                port=settings.api_port,
            )
        )
    if len(settings.agent_ports) != settings.agents:
        msg = f"{settings.agents} agents need as many health ports, got {settings.agent_ports}"
        raise ValueError(msg)
    for agent, port in zip(agent_names(settings.agents), settings.agent_ports, strict=True):
        argv = (*cli, *agent_argv(settings, layout, agent, port))
        children.append(Child(name=agent, role=Role.AGENT, argv=argv, port=port))
    return children


def stop_groups(children: list[Child]) -> list[list[Child]]:
    """The children grouped in stop order: all agents together first, then one role at a time."""
    roles = sorted({child.role for child in children})
    return [[c for c in children if c.role == role] for role in roles]


def announcement(settings: FarmSettings, layout: Layout, children: list[Child]) -> list[str]:
    """Where everything is, and what to type next."""
    agents = [c for c in children if c.role is Role.AGENT]
    url = nats_url(settings)
    flag = client_flags(settings)
    lines = [
        f"NATS        {url}  (prefix {settings.prefix})",
        f"metrics     {metrics_url(settings)}",
        *(
            [f"api         {api_url(settings)}  (console; /api/v1, /api/docs)"]
            if settings.api_port
            else []
        ),
        f"data dir    {layout.root}",
        f"SQL         ffrtmp sql{flag} '{QUEUE_SQL}'",
        f"logs        {layout.logs}/<component>.log",
        f"prometheus  targets in {layout.prometheus} (deploy/prometheus/local.yml reads them)",
    ]
    if agents:
        health = ", ".join(f"{c.name} :{c.port}" for c in agents)
        lines.append(f"agents      {health} (/health, /ready, /metrics)")
    lines += [
        "",
        f"submit      ffrtmp jobs submit{flag} --scenario 720p-h264 --duration 5 --wait",
        f"demo        ffrtmp demo{flag}",
        f"watch       ffrtmp top{flag}",
        "stop        Ctrl-C (agents drain first, NATS stops last)",
    ]
    return lines
