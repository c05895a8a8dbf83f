"""One agent process for the chaos harness: the real agent service, a scripted engine, a journal.

``ffrtmp bench chaos`` kills agents with SIGKILL, so what an agent did must survive it: every
time the service actually begins an attempt (its ``JobStarted`` is stored and the engine is
asked to start), this process appends ``<job> <attempt> <agent>`` to its execution log and
fsyncs it. The harness reads all agents' logs at the end: an attempt listed twice ran twice.
Run as ``python -m ffrtmp.bench.chaosagent --nats URL --prefix P --id a1 --log a1.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path

from agent.attempt import AttemptSettings
from agent.engine import Execution, Failed
from agent.scripted import Behaviour, ScriptedEngine
from agent.service import AgentService, AgentSettings
from events.agent_events import Capabilities
from events.jetstream import JetStreamEventStore
from events.subjects import Subjects
from events.work import Dispatch

CAPABILITIES = Capabilities(hostname="chaos", encoders=("libx264", "libx265", "libsvtav1"))


class JournaledEngine:
    """A scripted engine that writes each attempt it begins to a durable execution log."""

    def __init__(self, log: Path, agent: str, behaviour: Behaviour) -> None:
        """Append to ``log`` (created if missing)."""
        self._engine = ScriptedEngine(behaviour)
        self._agent = agent
        self._fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def start(self, dispatch: Dispatch) -> Execution | Failed:
        """Record the execution before it begins, then begin it."""
        line = f"{dispatch.job} {dispatch.attempt} {self._agent}\n".encode()
        os.write(self._fd, line)
        os.fsync(self._fd)
        return await self._engine.start(dispatch)


def read_executions(log: Path) -> list[tuple[str, int, str]]:
    """``(job, attempt, agent)`` per line of an execution log; a torn last line is skipped."""
    found = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            found.append((parts[0], int(parts[1]), parts[2]))
    return found


async def serve(url: str, prefix: str, agent: str, slots: int, log: Path, run_s: float) -> None:
    """Run the agent until SIGTERM (drain) or SIGKILL (nothing more)."""
    subjects = Subjects(prefix)
    engine = JournaledEngine(log, agent, Behaviour(run_s=run_s))
    settings = AgentSettings(
        slots=slots,
        heartbeat_s=0.5,
        drain_grace_s=2.0,
        attempt=AttemptSettings(poll_s=0.05),
        keep_logs=False,
    )
    store = await JetStreamEventStore.connect(url, subjects)
    async with store:
        service = AgentService(store.nc, store, subjects, agent, CAPABILITIES, engine, settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.start()
        await stop.wait()
        await service.stop()


def main() -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nats", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--id", required=True)
    parser.add_argument("--slots", type=int, default=2)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--run-s", type=float, default=0.3)
    args = parser.parse_args()
    asyncio.run(serve(args.nats, args.prefix, args.id, args.slots, args.log, args.run_s))


if __name__ == "__main__":
    main()
