"""The farm at a glance: queues, agents, running jobs, recent failures; ``top`` and ``up`` show it.

A ``Watcher`` folds the log incrementally (the scheduler's own fold, from the last sequence it
saw) and reads each agent's last heartbeat; ``frame`` turns that into a ``Frame`` (pure, and
the JSON of ``ffrtmp top --once --output json``), and ``render`` draws a frame with rich (pure).
Load, GPU temperature and live progress are telemetry from heartbeats; everything else is the
log.
"""

from __future__ import annotations

import time
from typing import Final

import msgspec
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from events.enums import HOLDING_STATUSES, JobStatus, Queue
from events.job import JobState, is_terminal
from events.work import Heartbeat
from ffrtmp.cli.common import ago, when
from ffrtmp.client.conn import Conn
from ffrtmp.client.follow import live_of
from ffrtmp.client.read import FarmView, fold_into, heartbeats
from ffrtmp.client.render import failure, gpu_line, node_status, styled

S = JobStatus
WAITING: Final = frozenset({S.PENDING, S.QUEUED, S.RETRYING})
FAILED: Final = frozenset({S.FAILED, S.REJECTED})
RECENT_FAILURES: Final = 5
GIB: Final = 1024**3


class QueueLine(msgspec.Struct, frozen=True, kw_only=True):
    """One queue: jobs waiting (pending approval, queued, retrying), active and finished."""

    queue: str
    waiting: int
    active: int
    completed: int
    failed: int


class AgentLine(msgspec.Struct, frozen=True, kw_only=True):
    """One agent: the log's status, slots in use, and its last heartbeat's readings."""

    id: str
    status: str
    slots: int
    busy: int
    cpu_percent: float | None
    memory_used_bytes: int | None
    gpu: str
    """GPUs with load and temperature, e.g. ``0: RTX A2000 35% 61°C``."""
    last_heartbeat_at: float


class RunningLine(msgspec.Struct, frozen=True, kw_only=True):
    """One job an agent holds, with its progress (from the heartbeat, else the log)."""

    id: str
    status: str
    scenario: str
    queue: str
    agent: str
    attempt: int
    percent: float
    fps: float | None
    speed: float | None


class FailureLine(msgspec.Struct, frozen=True, kw_only=True):
    """A job that failed or was rejected: why, and where it last ran."""

    id: str
    status: str
    scenario: str
    agent: str
    attempt: int
    reason: str
    finished_at: float


class Frame(msgspec.Struct, frozen=True, kw_only=True):
    """One picture of the farm (``ffrtmp top --once --output json``)."""

    at: float
    seq: int
    jobs: int
    queues: list[QueueLine]
    agents: list[AgentLine]
    running: list[RunningLine]
    failures: list[FailureLine]


def _queues(jobs: list[JobState]) -> list[QueueLine]:
    lines = []
    for queue in Queue:
        mine = [s for s in jobs if s.spec is not None and s.spec.queue == queue]
        lines.append(
            QueueLine(
                queue=str(queue),
                waiting=sum(s.status in WAITING for s in mine),
                active=sum(s.status in HOLDING_STATUSES for s in mine),
                completed=sum(s.status is S.COMPLETED for s in mine),
                failed=sum(s.status in FAILED for s in mine),
            )
        )
    return lines


def _agents(view: FarmView, beats: dict[str, Heartbeat]) -> list[AgentLine]:
    busy: dict[str, int] = {}
    for job in view.jobs.values():
        if job.status in HOLDING_STATUSES and job.agent:
            busy[job.agent] = busy.get(job.agent, 0) + 1
    lines = []
    for agent, state in sorted(view.agents.items()):
        beat = beats.get(agent)
        lines.append(
            AgentLine(
                id=agent,
                status=node_status(state, busy.get(agent, 0)),
                slots=state.slots,
                busy=busy.get(agent, 0),
                cpu_percent=beat.cpu_percent if beat else None,
                memory_used_bytes=beat.memory_used_bytes if beat else None,
                gpu=gpu_line(beat, state),
                last_heartbeat_at=beat.at if beat else 0.0,
            )
        )
    return lines


def _running(jobs: list[JobState], beats: dict[str, Heartbeat]) -> list[RunningLine]:
    lines = []
    for state in sorted(jobs, key=lambda s: s.assigned_at):
        if state.status not in HOLDING_STATUSES:
            continue
        live = live_of(beats.get(state.agent), state)
        lines.append(
            RunningLine(
                id=state.job,
                status=str(state.status),
                scenario=state.spec.scenario if state.spec else "",
                queue=str(state.spec.queue) if state.spec else "",
                agent=state.agent,
                attempt=state.attempt,
                percent=round(live.percent if live else state.percent, 1),
                fps=live.fps if live else None,
                speed=live.speed if live else None,
            )
        )
    return lines


def _failures(jobs: list[JobState], keep: int) -> list[FailureLine]:
    failed = [s for s in jobs if s.status in FAILED]
    failed.sort(key=lambda s: s.finished_at, reverse=True)
    return [
        FailureLine(
            id=s.job,
            status=str(s.status),
            scenario=s.spec.scenario if s.spec else "",
            agent=s.agent,
            attempt=s.attempt,
            reason=failure(s),
            finished_at=s.finished_at,
        )
        for s in failed[:keep]
    ]


def frame(
    view: FarmView, beats: dict[str, Heartbeat], now: float, failures: int = RECENT_FAILURES
) -> Frame:
    """The picture of a folded log and the agents' last heartbeats."""
    jobs = list(view.jobs.values())
    return Frame(
        at=now,
        seq=view.seq,
        jobs=len(jobs),
        queues=_queues(jobs),
        agents=_agents(view, beats),
        running=_running(jobs, beats),
        failures=_failures(jobs, failures),
    )


def _table(title: str, *columns: str) -> Table:
    return Table(*columns, title=title, title_justify="left", box=None, pad_edge=False)


def _opt(value: float | None, fmt: str) -> str:
    return "" if value is None else fmt.format(value)


def _bar(percent: float, width: int = 20) -> str:
    filled = round(max(0.0, min(100.0, percent)) / 100 * width)
    return "█" * filled + "░" * (width - filled)


def render(shown: Frame) -> RenderableType:
    """Draw a frame: four tables, each saying plainly when it is empty."""
    queues = _table("Queues", "QUEUE", "WAITING", "ACTIVE", "COMPLETED", "FAILED")
    for q in shown.queues:
        queues.add_row(q.queue, str(q.waiting), str(q.active), str(q.completed), str(q.failed))
    agents = _table("Agents", "ID", "STATUS", "SLOTS", "CPU", "MEM", "GPU", "HEARTBEAT")
    for a in shown.agents:
        agents.add_row(
            a.id, styled(a.status) if a.status != "online" else "[green]online[/]",
            f"{a.busy}/{a.slots}", _opt(a.cpu_percent, "{:.0f}%"),
            _opt(None if a.memory_used_bytes is None else a.memory_used_bytes / GIB, "{:.1f} GiB"),
            a.gpu, ago(a.last_heartbeat_at, shown.at) + " ago" if a.last_heartbeat_at else "never",
        )  # fmt: skip
    running = _table("Running", "JOB", "STATUS", "SCENARIO", "QUEUE", "AGENT", "PROGRESS", "FPS",
                     "SPEED")  # fmt: skip
    for r in shown.running:
        running.add_row(
            r.id, styled(r.status), r.scenario, r.queue, f"{r.agent} #{r.attempt}",
            f"{_bar(r.percent)} {r.percent:3.0f}%", _opt(r.fps, "{:.0f}"), _opt(r.speed, "{:.2f}x"),
        )  # fmt: skip
    failures = _table("Recent failures", "JOB", "STATUS", "SCENARIO", "WHERE", "WHEN", "WHY")
    for f in shown.failures:
        where = f"{f.agent} #{f.attempt}" if f.agent else "never placed"
        failures.add_row(f.id, styled(f.status), f.scenario, where, when(f.finished_at), f.reason)
    parts: list[RenderableType] = [queues, Text(), agents]
    if not shown.agents:
        parts.append(Text("no agents registered yet", style="dim"))
    parts += [Text(), running]
    if not shown.running:
        parts.append(Text("nothing running", style="dim"))
    parts += [Text(), failures]
    if not shown.failures:
        parts.append(Text("no failures", style="dim"))
    footer = f"{shown.jobs} jobs, log at #{shown.seq}, {when(shown.at)}"
    parts += [Text(), Text(footer, style="dim")]
    return Group(*parts)


class Watcher:
    """The log folded so far and the latest heartbeats; ``refresh`` reads only what is new."""

    def __init__(self) -> None:
        """Start from an empty log."""
        self.view = FarmView()

    async def refresh(self, conn: Conn) -> Frame:
        """Fold the events appended since the last refresh, read heartbeats, make a frame."""
        async for seq, event in conn.store.replay(self.view.seq + 1):
            fold_into(self.view, seq, event)
        beats = await heartbeats(conn, set(self.view.agents))
        return frame(self.view, beats, time.time())


def statuses(view: FarmView) -> dict[str, str]:
    """Every job's status now: the ``before`` of a log that prints only what happens next."""
    return {job: str(state.status) for job, state in view.jobs.items()}


def transitions(before: dict[str, str], view: FarmView) -> list[str]:
    """One line per job whose status changed since ``before`` (which is updated), oldest first."""
    lines = []
    changed_at = view.changed_at
    for job, state in sorted(view.jobs.items(), key=lambda item: changed_at.get(item[0], 0.0)):
        status = str(state.status)
        if before.get(job) == status:
            continue
        before[job] = status
        where = f" on {state.agent}" if state.agent and state.status in HOLDING_STATUSES else ""
        why = f": {failure(state)}" if is_terminal(state) and failure(state) else ""
        scenario = state.spec.scenario if state.spec else ""
        lines.append(f"{when(view.changed_at.get(job, 0.0))}  job {job} {scenario} {status}"
                     f"{where}{why}")  # fmt: skip
    return lines
