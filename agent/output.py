"""An attempt's file output: written under a temporary name beside it, published on success.

FFmpeg writes ``.<stem>.ffrtmp-<job>-<attempt>.partial<ext>`` in the destination's directory
(same file system, so publishing is a rename, and the extension still tells FFmpeg the
container). Only a finished, successful attempt publishes: with ``overwrite`` by ``os.replace``,
otherwise by ``os.link``, which refuses atomically when the destination appeared meanwhile, so
a file is never replaced unless the spec said so. A canceled or failed attempt removes its
temporary file; each attempt has its own, so two attempts of one job never write the same file.

An attempt ``claim``s its name: it removes the temporary files of the job's earlier attempts
first. One left by an agent killed with ``kill -9`` goes; one whose writer still runs (an agent
cut off from the farm, already replaced) loses its name, so that writer can no longer publish
over the attempt that now holds the job (its publish finds no file and fails).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from agent.engine import Failed
from events.enums import FailureReason


def temporary(destination: Path, job: str, attempt: int) -> Path:
    """The name attempt ``attempt`` of ``job`` writes before it publishes."""
    name = f".{destination.stem}.ffrtmp-{job}-{attempt}.partial{destination.suffix}"
    return destination.with_name(name)


def claim(destination: Path, job: str, attempt: int) -> Path:
    """The attempt's temporary name, once the job's earlier attempts' files are removed."""
    for earlier in range(1, attempt):
        discard(temporary(destination, job, earlier))
    return temporary(destination, job, attempt)


def written_bytes(written: Path) -> int | None:
    """The size of the attempt's file; None when it cannot be read (never written, removed)."""
    try:
        return written.stat().st_size
    except OSError:
        return None


def exists_problem(destination: Path, overwrite: bool) -> str | None:
    """Why the attempt must not start: the destination exists and the spec does not overwrite."""
    if overwrite or not destination.exists():
        return None
    return (
        f"output {destination} already exists; set overwrite in the spec "
        "(ffrtmp jobs submit --overwrite) to replace it"
    )


def publish(written: Path, destination: Path, overwrite: bool) -> Failed | None:
    """Give the finished file its name; None on success, else why not (the file is removed)."""
    try:
        if overwrite:
            written.replace(destination)
        elif not _link(written, destination):
            return Failed(
                reason=FailureReason.USER_ERROR,
                message=f"output {destination} appeared while encoding; not replaced "
                "(set overwrite to replace it)",
            )
    except OSError as exc:
        return Failed(
            reason=FailureReason.RUNTIME_ERROR,
            message=f"could not move the finished output to {destination}: {exc.strerror}",
        )
    finally:
        discard(written)
    return None


def _link(written: Path, destination: Path) -> bool:
    """Link ``destination`` to the file unless it exists; False when it does."""
    try:
        os.link(written, destination)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno not in {errno.EPERM, errno.ENOTSUP, errno.EXDEV, errno.EMLINK}:
            raise
        if destination.exists():  # a file system without hard links: check, then rename
            return False
        written.replace(destination)
    return True


def discard(written: Path) -> None:
    """Remove a temporary output if it is still there."""
    with contextlib.suppress(OSError):
        written.unlink()
