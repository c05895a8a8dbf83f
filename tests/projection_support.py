"""Helpers for the projection tests: legal histories from the decider, and table snapshots."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from events.agent_events import AgentCleared, AgentLost, AgentQuarantined, AgentRegistered
from events.base import Unknown
from events.codec import Decoded
from events.commands import (
    AgentGone,
    Assign,
    CancelJob,
    Complete,
    ControlDone,
    Fail,
    PauseJob,
    Progress,
    Reject,
    RequeueDue,
    RespondToJob,
    ResumeJob,
    Start,
    SubmitJob,
    TimeOut,
)
from events.enums import ControlAction, FailureReason, TimeoutKind
from events.job import JobState, decide, evolve, initial
from events.job_events import JobResults
from projections import Projector, schema
from tests.farm import CPU, GPU
from tests.strategies import specs

JOBS = ("j1", "j2", "j3")
AGENTS = ("a1", "a2")
T0 = 1_767_225_600.0
KINDS = (
    "submit",
    "assign",
    "start",
    "progress",
    "complete",
    "fail",
    "timeout",
    "gone",
    "requeue",
    "pause",
    "resume",
    "cancel",
    "respond",
    "control",
    "reject",
    "agent",
    "unknown",
)
results = st.builds(
    JobResults,
    wall_s=st.floats(0.1, 500),
    frames=st.integers(0, 10**6),
    encode_fps=st.none() | st.floats(0, 1000),
    energy_j=st.none() | st.floats(0, 1e6),
    vmaf=st.none() | st.floats(0, 100),
    stalls=st.none() | st.integers(0, 100),
)


def _command(data: st.DataObject, kind: str, state: JobState, serial: int, now: float) -> Any:  # noqa: C901, PLR0912
    job, cid = state.job, f"c{serial}"
    agent = state.agent or data.draw(st.sampled_from(AGENTS))
    match kind:
        case "submit":
            return SubmitJob(id=cid, job=job, at=now, spec=data.draw(specs), by="op")
        case "assign":
            return Assign(agent=data.draw(st.sampled_from(AGENTS)), budget_s=60.0)
        case "start":
            return Start(agent=agent, attempt=state.attempt)
        case "progress":
            return Progress(
                agent=agent, attempt=state.attempt, percent=data.draw(st.floats(0, 100))
            )
        case "complete":
            return Complete(agent=agent, attempt=state.attempt, results=data.draw(results))
        case "fail":
            reason = data.draw(st.sampled_from(list(FailureReason)))
            return Fail(agent=agent, attempt=state.attempt, reason=reason, message="boom")
        case "timeout":
            return TimeOut(
                attempt=state.attempt, kind=data.draw(st.sampled_from(list(TimeoutKind)))
            )
        case "gone":
            return AgentGone(agent=agent)
        case "requeue":
            return RequeueDue()
        case "pause":
            return PauseJob(id=cid, job=job, at=now)
        case "resume":
            return ResumeJob(id=cid, job=job, at=now)
        case "cancel":
            return CancelJob(id=cid, job=job, at=now, reason="no longer needed")
        case "respond":
            return RespondToJob(id=cid, job=job, at=now, approve=data.draw(st.booleans()))
        case "control":
            action = data.draw(st.sampled_from(list(ControlAction)))
            return ControlDone(agent=agent, action=action, attempt=state.attempt)
        case _:
            return Reject(message="no agent could ever run it")


def _agent_event(data: st.DataObject, now: float) -> Decoded:
    agent = data.draw(st.sampled_from(AGENTS))
    which = data.draw(st.integers(0, 3))
    if which == 0:
        caps = data.draw(st.sampled_from([CPU, GPU]))
        return AgentRegistered(agent=agent, at=now, capabilities=caps, slots=2)
    if which == 1:
        return AgentLost(agent=agent, at=now, last_seen=now - 10)
    if which == 2:
        return AgentQuarantined(agent=agent, at=now, reason="fails in a row")
    return AgentCleared(agent=agent, at=now)


def legal_history(data: st.DataObject, steps: int) -> list[Decoded]:
    """Events the decider wrote for random commands on a few jobs, with agent and unknown ones."""
    states = {job: initial(job) for job in JOBS}
    history: list[Decoded] = []
    now = T0
    for serial in range(steps):
        now += data.draw(st.floats(0, 20))
        kind = data.draw(st.sampled_from(KINDS))
        if kind == "agent":
            history.append(_agent_event(data, now))
            continue
        if kind == "unknown":
            history.append(Unknown(type="JobTeleported", v=1, raw=b'{"type":"JobTeleported"}'))
            continue
        job = data.draw(st.sampled_from(JOBS))
        command = _command(data, kind, states[job], serial, now)
        for event in decide(states[job], command, now, cause=f"seq:{serial}"):
            states[job] = evolve(states[job], event)
            history.append(event)
    return history


TABLES = (*schema.FOLDED_TABLES,)


def snapshot(projector: Projector) -> dict[str, list[list[Any]]]:
    """Every folded table's rows in a stable order, and the checkpoint's counts."""
    found = {
        table: projector.query(f"SELECT * FROM {table} ORDER BY ALL").rows  # noqa: S608
        for table in TABLES
    }
    found["_checkpoint"] = projector.query(
        "SELECT version, stream, seq, events, unknown_events, malformed_events FROM _checkpoint"
    ).rows
    return found


class ProjectorProcess:
    """One ``ffrtmp projector run`` process at a time on one database."""

    def __init__(self, url: str, prefix: str, db: Path, logs: Path) -> None:
        self.url, self.prefix, self.db, self.logs = url, prefix, db, logs
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-c",
            "from ffrtmp.cli import main; main()",
            "projector",
            "run",
            *("--db", str(self.db), "--nats", self.url, "--prefix", self.prefix),
        ]
        with (self.logs / "projector.log").open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 -- our own CLI
                command, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None:
            self.process.send_signal(sig)
            self.process.wait(timeout=30)
            self.process = None
