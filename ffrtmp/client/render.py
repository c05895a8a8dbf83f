"""How jobs, events and agents read in a terminal, and their stable JSON rows.

Pure formatting: state and events in, strings and structs out. The JSON rows here are part of
the documented API (docs/api.md): fields are only ever added, with defaults.
"""

from __future__ import annotations

from typing import Final

import msgspec

from events.agent import AgentState
from events.base import SetAside, Unknown
from events.codec import Decoded
from events.enums import JobStatus
from events.job import JobState
from events.job_events import (
    CommandRefused,
    JobAssigned,
    JobCompleted,
    JobControlRequested,
    JobInputReceived,
    JobQueued,
    JobResults,
    JobSubmitted,
)
from events.spec import duration_words
from events.work import Heartbeat

S = JobStatus
STATUS_STYLE: Final = {
    S.COMPLETED: "green",
    S.FAILED: "red",
    S.REJECTED: "red",
    S.CANCELED: "yellow",
    S.RUNNING: "cyan",
    S.PAUSED: "magenta",
    S.RETRYING: "yellow",
    S.PENDING: "magenta",
}
_COMMON: Final = frozenset({"v", "job", "at", "cause", "agent", "attempt", "percent"})
_WATCHED: Final = (
    "status",
    "agent",
    "attempt",
    "retries",
    "percent",
    "reason",
    "message",
    "prompt",
    "requested",
    "resume_to",
)


class JobRow(msgspec.Struct, frozen=True, kw_only=True):
    """One job in ``ffrtmp jobs list --output json`` (times are Unix seconds, 0 = not yet)."""

    id: str
    status: str
    scenario: str
    queue: str
    priority: str
    agent: str
    attempt: int
    retries: int
    percent: float
    submitted_at: float
    finished_at: float
    reason: str
    message: str


def job_row(state: JobState) -> JobRow:
    """The list row of a job."""
    spec = state.spec
    return JobRow(
        id=state.job,
        status=str(state.status),
        scenario=spec.scenario if spec else "",
        queue=str(spec.queue) if spec else "",
        priority=str(spec.priority) if spec else "",
        agent=state.agent,
        attempt=state.attempt,
        retries=state.retries,
        percent=round(state.percent, 1),
        submitted_at=state.submitted_at,
        finished_at=state.finished_at,
        reason=str(state.reason or ""),
        message=state.message,
    )


def styled(status: str) -> str:
    """A status with its colour (rich markup)."""
    style = STATUS_STYLE.get(S(status)) if status in S.__members__.values() else None
    return f"[{style}]{status}[/]" if style else status


def failure(state: JobState) -> str:
    """Why the job failed, was rejected or is retrying; empty otherwise."""
    if state.reason is None and not state.message:
        return ""
    if state.reason is None:
        return state.message
    return f"{state.reason}: {state.message}" if state.message else str(state.reason)


def results_line(results: JobResults) -> str:
    """The figures of a completed attempt, those measured."""
    parts = [f"wall {results.wall_s:.1f}s", f"{results.frames} frames"]
    optional = (
        ("fps", results.encode_fps, "{:.1f}"),
        ("speed", results.speed, "{:.2f}x"),
        ("cpu", results.cpu_s, "{:.1f}s"),
        ("out", results.output_bytes, "{} B"),
        ("energy", results.energy_j, "{:.0f} J"),
        ("psnr", results.psnr, "{:.2f}"),
        ("ssim", results.ssim, "{:.4f}"),
        ("vmaf", results.vmaf, "{:.1f}"),
    )
    parts += [f"{name} {fmt.format(value)}" for name, value, fmt in optional if value is not None]
    return ", ".join(parts)


def detail(event: Decoded) -> str:
    """What an event says beyond the usual fields, in one line."""
    match event:
        case Unknown():
            return f"(unreadable here: {event.type} v{event.v})"
        case SetAside():
            return f"(set aside, never applied: {event.reason})"
        case JobSubmitted():
            spec = event.spec
            return (
                f"{spec.scenario} {spec.queue}/{spec.priority}, {duration_words(spec)} of "
                f"{spec.input} -> {spec.output}" + (f" by {event.by}" if event.by else "")
            )
        case JobAssigned():
            gpu = f" gpu {event.gpu}" if event.gpu is not None else ""
            return f"attempt {event.attempt} on {event.agent}{gpu}, budget {event.budget_s:.0f}s"
        case JobCompleted():
            return results_line(event.results)
        case CommandRefused():
            return f"{event.command} refused: {event.reason}"
        case JobControlRequested():
            by = f" by {event.by}" if event.by else ""
            return f"{event.action} asked of {event.agent}{by}"
        case JobInputReceived():
            verdict = "approved" if event.approved else "denied"
            return f"{verdict} by {event.by or 'operator'}" + (
                f": {event.answer}" if event.answer else ""
            )
        case JobQueued():
            return event.reason
        case _:
            fields = msgspec.structs.asdict(event)
            shown = {k: v for k, v in fields.items() if k not in _COMMON and v not in ("", None)}
            return ", ".join(f"{k}={v}" for k, v in shown.items())


def changes(before: JobState, after: JobState) -> str:
    """Which of a job's visible fields an event changed: ``status queued→assigned, agent →a1``."""
    parts = []
    for name in _WATCHED:
        old, new = getattr(before, name), getattr(after, name)
        if old != new and name != "percent":
            parts.append(f"{name} {_short(old)}→{_short(new)}")
        elif old != new:
            parts.append(f"percent {new:.0f}")
    return ", ".join(parts)


def _short(value: object) -> str:
    if value is None or value == "":
        return "∅"
    text = str(value)
    return text if len(text) <= 40 else text[:39] + "…"


def event_type(event: Decoded) -> str:
    """The event's type name (an unknown one keeps the name it was written with)."""
    if isinstance(event, Unknown):
        return event.type
    return f"SetAside({event.kind})" if isinstance(event, SetAside) else type(event).__name__


def node_status(state: AgentState, running: int) -> str:
    """An agent's status as an operator reads it: drained, draining, quarantined, online."""
    if state.draining:
        return "draining" if running else "drained"
    if state.quarantined:
        return "quarantined"
    return str(state.status)


def gpu_line(beat: Heartbeat | None, state: AgentState) -> str:
    """GPUs with their live load and temperature, where a heartbeat said."""
    caps = state.capabilities
    if caps is None or not caps.gpus:
        return ""
    live = {g.index: g for g in beat.gpus} if beat else {}
    parts = []
    for gpu in caps.gpus:
        text = f"{gpu.index}: {gpu.name}"
        reading = live.get(gpu.index)
        if reading is not None and reading.utilization_percent is not None:
            text += f" {reading.utilization_percent:.0f}%"
        if reading is not None and reading.temperature_c is not None:
            text += f" {reading.temperature_c:.0f}°C"
        parts.append(text)
    return "; ".join(parts)
