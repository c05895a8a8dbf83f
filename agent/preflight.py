"""Checks before an attempt starts: its input is there, and its output has room.

A missing or unreadable input file is the job's fault (``user_error``, never retried). A disk
with less than ``min_free_bytes`` free is this agent's problem (``resource_error``): another
agent may have room, so the scheduler retries it elsewhere. ``disk_problem`` is also what the
agent's readiness check asks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

from agent.engine import Failed
from events.enums import FailureReason
from events.spec import InputKind, JobSpec, OutputKind, input_kind, output_kind

MIB: Final = 1024 * 1024
MIN_FREE_BYTES: Final = 1024 * MIB


def disk_problem(directory: Path, min_free_bytes: int) -> str | None:
    """Why ``directory`` cannot take output now, or None when it has room."""
    try:
        free = shutil.disk_usage(directory).free
    except OSError as exc:
        return f"cannot read free space of {directory}: {exc.strerror}"
    if free < min_free_bytes:
        return (
            f"only {free // MIB} MiB free on {directory}, below the {min_free_bytes // MIB} MiB "
            "this agent keeps free; another agent will take the job"
        )
    return None


def _input_problem(spec: JobSpec) -> str | None:
    if input_kind(spec.input) is not InputKind.FILE:
        return None
    path = Path(spec.input)
    if not path.is_file():
        return f"input file {spec.input} does not exist on this agent"
    if not os.access(path, os.R_OK):
        return f"input file {spec.input} is not readable by this agent"
    return None


def output_dir(spec: JobSpec, work_dir: Path) -> Path:
    """Where the attempt writes: the output file's directory, else the agent's work directory."""
    if output_kind(spec.output) is OutputKind.FILE:
        return Path(spec.output).parent
    return work_dir


def check(spec: JobSpec, work_dir: Path, min_free_bytes: int = MIN_FREE_BYTES) -> Failed | None:
    """None when the attempt may start; else the classified reason it cannot."""
    problem = _input_problem(spec)
    if problem is not None:
        return Failed(reason=FailureReason.USER_ERROR, message=problem)
    target = output_dir(spec, work_dir)
    if not target.is_dir():
        return Failed(
            reason=FailureReason.USER_ERROR,
            message=f"output directory {target} does not exist on this agent",
        )
    problem = disk_problem(target, min_free_bytes)
    if problem is not None:
        return Failed(reason=FailureReason.RESOURCE_ERROR, message=problem)
    return None
