"""``ffrtmp agent run`` (and ``python -m agent run``): one agent on this machine until SIGTERM.

Start-up does the checks that would otherwise fail later and far away: FFmpeg is found and runs
(else one line and a non-zero exit), the capabilities are detected (NVENC only where a test
encode succeeds), the health port is bound, and only then does the agent register. SIGTERM or
Ctrl-C drains: no new work, running attempts get ``--drain-grace-s`` to finish, the rest are
handed back to the scheduler, and the agent deregisters and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import re
import signal
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from agent import gst_probe
from agent.attempt import AttemptSettings
from agent.capabilities import detect
from agent.engines import EngineChooser
from agent.ffmpeg_binary import find_ffmpeg
from agent.ffmpeg_engine import EngineSettings, FfmpegEngine
from agent.gst_engine import GstEngine, GstSettings
from agent.hardware import Rapl
from agent.health import DEFAULT_PORT, Check, HealthServer, disk_check, ffmpeg_check, nats_check
from agent.nvml import Nvml
from agent.service import AgentService, AgentSettings, default_slots
from agent.telemetry import EnergyMeter, Telemetry
from events.agent_events import Capabilities
from events.connection import NatsOptions, env_options, redact_logs
from events.errors import FfrtmpError
from events.ids import check_id
from events.jetstream import JetStreamEventStore
from events.streams import require_streams
from events.subjects import DEFAULT_PREFIX, Subjects

_log = logging.getLogger("agent")

app = typer.Typer(
    help="The agent: pulls FFmpeg work for this machine and reports it.",
    add_completion=False,
    rich_markup_mode=None,  # plain help for `python -m agent`, as ffrtmp.cli.lazy says why
)

_NOT_TOKEN = re.compile(r"[^a-z0-9_-]+")

Resolve = Callable[[str | None, str | None], tuple[NatsOptions, str]]
"""From the ``--nats`` and ``--prefix`` given (or None): how to connect, and the prefix."""


def env_resolve(url: str | None, prefix: str | None) -> tuple[NatsOptions, str]:
    """The environment's settings (``python -m agent``); ``ffrtmp agent`` adds the config file."""
    return env_options(url), prefix or os.environ.get("FFRTMP_PREFIX") or DEFAULT_PREFIX


_resolve: list[Resolve] = [env_resolve]


def use_resolver(resolve: Resolve) -> None:
    """How ``run`` resolves its settings (``ffrtmp.cli.agent`` installs ``ffrtmp.config``'s)."""
    _resolve[0] = resolve


@app.callback()
def group() -> None:
    """The agent: pulls FFmpeg work for this machine and reports it."""


def default_id(hostname: str | None = None) -> str:
    """The host's short name, lowercased, as a subject token (``gpu-07.dc1`` → ``gpu-07``)."""
    short = (hostname if hostname is not None else platform.node()).split(".", 1)[0].lower()
    return _NOT_TOKEN.sub("-", short).strip("-_")[:64].rstrip("-_") or "agent"


class AgentOptions(msgspec.Struct, frozen=True, kw_only=True):
    """What ``ffrtmp agent run`` was asked for."""

    nats: NatsOptions = NatsOptions()
    prefix: str = DEFAULT_PREFIX
    agent: str = ""
    slots: int | None = None  # None: from the cores and GPUs
    ffmpeg: str | None = None
    gst_launch: str | None = None  # None: gst-launch-1.0 on PATH, when there is one
    health_port: int = DEFAULT_PORT
    health_host: str = "0.0.0.0"  # noqa: S104 -- probes and scrapers come from other machines
    heartbeat_s: float = 5.0
    work_dir: str = ""
    output_dir: str = ""
    drain_grace_s: float = 30.0
    media_roots: tuple[str, ...] = ()


@app.command()
def run(
    nats_url: Annotated[
        str | None,
        typer.Option("--nats", help="NATS URL (env FFRTMP_NATS_URL, else nats://127.0.0.1:4222)."),
    ] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Subject and stream prefix (env FFRTMP_PREFIX; ffrtmp).")
    ] = None,
    agent: Annotated[
        str, typer.Option("--id", help="Agent id (default: the host's short name).")
    ] = "",
    slots: Annotated[
        int | None, typer.Option(min=1, help="Concurrent jobs (default: from cores and GPUs).")
    ] = None,
    ffmpeg: Annotated[
        str | None, typer.Option(help="FFmpeg binary (default: PATH, else imageio-ffmpeg's).")
    ] = None,
    gst_launch: Annotated[
        str | None,
        typer.Option(help="gst-launch-1.0 binary (default: PATH); GStreamer is optional."),
    ] = None,
    health_port: Annotated[
        int, typer.Option(min=0, help="Port of /health, /ready, /metrics (0: any free one).")
    ] = DEFAULT_PORT,
    health_host: Annotated[
        str, typer.Option(help="Address /health listens on (127.0.0.1: this machine only).")
    ] = "0.0.0.0",  # noqa: S104 -- probes and scrapers come from other machines
    heartbeat_s: Annotated[float, typer.Option(min=0.05, help="Seconds between heartbeats.")] = 5.0,
    work_dir: Annotated[
        str, typer.Option(help="Scratch directory (quality copies); default: the system's temp.")
    ] = "",
    output_dir: Annotated[
        str, typer.Option(help="Disk that /ready watches for free space; default: --work-dir.")
    ] = "",
    drain_grace_s: Annotated[
        float, typer.Option(min=0, help="On SIGTERM, how long running jobs may finish.")
    ] = 30.0,
    media_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--media-root",
            help="Only read and write files under this directory (repeat); default: anywhere.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every step.")] = False,
) -> None:
    """Run an agent until SIGTERM or Ctrl-C, then drain and deregister.

    Example: ffrtmp agent run --nats nats://10.0.0.5:4222 --slots 4
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    redact_logs()
    connection, prefix = _resolve[0](nats_url, prefix)
    options = AgentOptions(
        nats=connection,
        prefix=prefix,
        agent=check_id(agent, "agent") if agent else default_id(),
        slots=slots,
        ffmpeg=ffmpeg,
        gst_launch=gst_launch,
        health_port=health_port,
        health_host=health_host,
        heartbeat_s=heartbeat_s,
        work_dir=work_dir,
        output_dir=output_dir,
        drain_grace_s=drain_grace_s,
        media_roots=media_roots(media_root or []),
    )
    asyncio.run(serve(options))


def media_roots(roots: Sequence[Path]) -> tuple[str, ...]:
    """The roots as absolute directories, symlinks resolved; one line when one is not a dir."""
    for root in roots:
        if not root.is_dir():
            raise FfrtmpError(f"--media-root {root} is not a directory on this machine")
    return tuple(str(root.resolve()) for root in roots)


async def serve(options: AgentOptions) -> None:
    """Check, detect, register, work until a signal, drain, deregister."""
    subjects = Subjects(options.prefix)
    ffmpeg = find_ffmpeg(options.ffmpeg)
    work_dir = Path(options.work_dir or tempfile.gettempdir())
    nvml = Nvml.open()
    try:
        gst = await asyncio.to_thread(gst_probe.probe, options.gst_launch)
        capabilities = await asyncio.to_thread(detect, ffmpeg, nvml, gst)
        telemetry = Telemetry(nvml, Rapl())
        engine = engines(str(ffmpeg), gst, capabilities, work_dir, telemetry, options.media_roots)
        settings = AgentSettings(
            slots=options.slots or default_slots(capabilities),
            heartbeat_s=options.heartbeat_s,
            drain_grace_s=options.drain_grace_s,
            attempt=AttemptSettings(),
        )
        store = await JetStreamEventStore.connect(options.nats, subjects)
        async with store:
            await require_streams(store.nc.jetstream(), [subjects.work_stream])
            service = AgentService(
                store.nc, store, subjects, options.agent, capabilities, engine, settings,
                telemetry=telemetry.read,
            )  # fmt: skip
            output = Path(options.output_dir) if options.output_dir else work_dir
            checks = [ffmpeg_check(ffmpeg), disk_check(output), nats_check(service)]
            health = _bind(service, checks, options.health_port, options.health_host)
            try:
                await _work(service, health, options)
            finally:
                health.stop()
    finally:
        nvml.close()


def engines(
    ffmpeg: str,
    gst: gst_probe.GstInfo | None,
    capabilities: Capabilities,
    work_dir: Path,
    energy: EnergyMeter | None,
    media_roots: tuple[str, ...] = (),
) -> EngineChooser:
    """FFmpeg's engine, and GStreamer's when this machine has it, behind one chooser."""
    cores, scratch = capabilities.cpu_cores, str(work_dir)
    ffmpeg_engine = FfmpegEngine(
        EngineSettings(ffmpeg=ffmpeg, cores=cores, work_dir=scratch, media_roots=media_roots),
        energy=energy,
    )
    gst_engine = None
    if gst is not None:
        settings = GstSettings(
            launch=gst.launch, ffmpeg=ffmpeg, elements=gst.elements, cores=cores,
            work_dir=scratch, media_roots=media_roots,
        )  # fmt: skip
        gst_engine = GstEngine(settings, energy=energy)
    return EngineChooser(ffmpeg_engine, gst_engine, capabilities)


def _bind(service: AgentService, checks: Sequence[Check], port: int, host: str) -> HealthServer:
    """The health server on ``port``, or one line saying the port is taken."""
    try:
        return HealthServer(service, checks, port=port, host=host)
    except OSError as exc:
        raise FfrtmpError(
            f"cannot serve /health on port {port}: {exc.strerror}; pass --health-port"
        ) from exc


async def _work(service: AgentService, health: HealthServer, options: AgentOptions) -> None:
    """Start, wait for SIGTERM or SIGINT, then drain."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    health.start()
    await service.start()
    typer.echo(
        f"agent {service.agent} on {options.nats.shown} (prefix {options.prefix}): "
        f"{service.slots} slots, health on port {health.port}"
    )
    await stop.wait()
    typer.echo(f"agent {service.agent} draining (up to {options.drain_grace_s:g} s)")
    await service.stop()
    typer.echo(f"agent {service.agent} stopped")


def main() -> None:
    """``python -m agent``: the same commands, our errors as one line, exit 1."""
    try:
        app()
    except FfrtmpError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise SystemExit(1) from None
