"""The chaos harness's farm: real processes on one machine, each killable with SIGKILL.

A nats-server (``natsd.NatsServer``, fsync on every write), two schedulers (``ffrtmp scheduler
run``: one leads, one stands by), agents (``ffrtmp.bench.chaosagent``: the agent service with a
scripted engine and a durable execution log) and the projector (``ffrtmp projector run``). Each
child runs in its own session, so a kill reaches it alone, and writes its output to a log file
under the run's directory. This module only starts, kills and restarts; ``bench.chaos`` decides
when.
"""

from __future__ import annotations

import subprocess
import sys
from enum import StrEnum
from pathlib import Path
from typing import IO

import msgspec

from ffrtmp.lifeline import end
from ffrtmp.natsd import NatsServer, NatsSettings, free_port


class Component(StrEnum):
    """What the harness kills."""

    SCHEDULER = "scheduler"
    AGENT = "agent"
    PROJECTOR = "projector"
    NATS = "nats"


class FarmSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The farm's shape and its timers (short, so that a run of minutes sees many recoveries)."""

    root: str
    prefix: str = "chaos"
    agents: int = 2
    slots: int = 2
    run_s: float = 0.3  # seconds one scripted attempt works
    lease_ttl_s: float = 2.0
    agent_lost_after_s: float = 3.0


class Child:
    """One child process, restartable with the same arguments and log file."""

    def __init__(self, name: str, argv: list[str], log: Path) -> None:
        """Remember how to start it; ``start`` does."""
        self.name, self.argv, self.log_path = name, argv, log
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def alive(self) -> bool:
        """Whether it runs."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start it (again), appending to its log."""
        if self.alive:
            return
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and modules
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last words."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        if self._proc is not None:
            end(self._proc, timeout_s)
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class ChaosFarm:
    """The processes of one run, by component."""

    def __init__(self, settings: FarmSettings) -> None:
        """Lay out the run directory and the children's command lines; nothing starts."""
        self.settings = settings
        self.root = Path(settings.root)
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(
            NatsSettings(port=free_port(), store_dir=str(self.root / "nats"), host="127.0.0.1")
        )
        self.db = self.root / "farm.duckdb"
        self.children: dict[Component, list[Child]] = {
            Component.SCHEDULER: [self._scheduler(i) for i in (1, 2)],
            Component.AGENT: [self._agent(i) for i in range(1, settings.agents + 1)],
            Component.PROJECTOR: [self._projector()],
        }

    @property
    def url(self) -> str:
        """Where everything connects."""
        return self.nats.url

    def execution_logs(self) -> list[Path]:
        """The agents' execution logs."""
        return sorted((self.root / "executions").glob("*.log"))

    def _child(self, name: str, args: list[str]) -> Child:
        return Child(name, [sys.executable, *args], self.root / "logs" / f"{name}.log")

    def _common(self) -> list[str]:
        return ["--nats", self.url, "--prefix", self.settings.prefix]

    def _scheduler(self, index: int) -> Child:
        s = self.settings
        args = ["-m", "ffrtmp.cli", "scheduler", "run", *self._common(), "--name", f"s{index}"]
        args += ["--heartbeat-s", "0.5", "--agent-lost-after-s", str(s.agent_lost_after_s)]
        args += ["--lease-ttl-s", str(s.lease_ttl_s), "--ack-wait-s", "2"]
        args += ["--stalled-after-s", "15", "--snapshot-every-s", "10"]
        return self._child(f"scheduler-{index}", args)

    def _agent(self, index: int) -> Child:
        s = self.settings
        (self.root / "executions").mkdir(exist_ok=True)
        log = self.root / "executions" / f"a{index}.log"
        args = ["-m", "ffrtmp.bench.chaosagent", *self._common(), "--id", f"a{index}"]
        args += ["--slots", str(s.slots), "--log", str(log), "--run-s", str(s.run_s)]
        return self._child(f"agent-{index}", args)

    def _projector(self) -> Child:
        args = ["-m", "ffrtmp.cli", "projector", "run", *self._common(), "--db", str(self.db)]
        return self._child("projector", args)

    async def start(self) -> None:
        """The server first (the others need it), then every child."""
        self.nats.spawn()
        await self.nats.wait_ready()

    def start_children(self) -> None:
        """Start every child process."""
        for children in self.children.values():
            for child in children:
                child.start()

    def targets(self, component: Component) -> list[str]:
        """Names of what can be killed for a component."""
        if component is Component.NATS:
            return ["nats-server"]
        return [child.name for child in self.children[component]]

    def kill(self, component: Component, index: int) -> None:
        """SIGKILL one process of a component."""
        if component is Component.NATS:
            self.nats.kill()
        else:
            self.children[component][index].kill()

    async def restart(self, component: Component, index: int) -> None:
        """Start a killed process again; the server is waited for until it serves."""
        if component is Component.NATS:
            self.nats.spawn()
            await self.nats.wait_ready()
        else:
            self.children[component][index].start()

    def stop_children(self) -> None:
        """SIGTERM every child, agents last so they can report what they still hold."""
        for component in (Component.PROJECTOR, Component.SCHEDULER, Component.AGENT):
            for child in self.children[component]:
                child.stop()

    def stop(self) -> None:
        """Everything, the server last."""
        self.stop_children()
        self.nats.stop()
