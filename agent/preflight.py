"""Checks before an attempt starts: its input is there, and its output may be written and has room.

A missing or unreadable input file is the job's fault (``user_error``, never retried), and so
are a file input or output outside the agent's media roots (``ffrtmp agent run --media-root``;
paths are compared after resolving symlinks) and an output file that already exists when the
spec does not say ``overwrite``. A disk
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
from agent.output import exists_problem
from events.enums import FailureReason
from events.errors import InvalidSpec
from events.media import check_path, within
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


def _outside(field: str, path: Path, roots: tuple[Path, ...]) -> str | None:
    """Why ``path`` may not be used: relative, or outside every media root."""
    try:
        check_path(field, str(path))
    except InvalidSpec as exc:
        return str(exc)
    real = Path(os.path.realpath(path))
    if within(real, roots):
        return None
    listed = ", ".join(str(root) for root in roots)
    return f"{field} {path} is outside this agent's media roots ({listed})"


def _input_problem(spec: JobSpec, roots: tuple[Path, ...]) -> str | None:
    if input_kind(spec.input) is not InputKind.FILE:
        return None
    path = Path(spec.input)
    outside = _outside("input", path, roots)
    if outside is not None:
        return outside
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


def _output_problem(spec: JobSpec, roots: tuple[Path, ...]) -> str | None:
    if output_kind(spec.output) is not OutputKind.FILE:
        return None
    path = Path(spec.output)
    outside = _outside("output", path, roots)  # first: say nothing of what lies outside
    if outside is not None:
        return outside
    if not path.parent.is_dir():
        return f"output directory {path.parent} does not exist on this agent"
    return exists_problem(path, spec.overwrite)


def check(
    spec: JobSpec,
    work_dir: Path,
    min_free_bytes: int = MIN_FREE_BYTES,
    roots: tuple[Path, ...] = (),
) -> Failed | None:
    """None when the attempt may start; else the classified reason it cannot."""
    problem = _input_problem(spec, roots) or _output_problem(spec, roots)
    if problem is not None:
        return Failed(reason=FailureReason.USER_ERROR, message=problem)
    target = output_dir(spec, work_dir)
    problem = disk_problem(target, min_free_bytes)
    if problem is not None:
        return Failed(reason=FailureReason.RESOURCE_ERROR, message=problem)
    return None
