"""Each attempt's log tail (the end of FFmpeg's stderr) in a JetStream object store.

The log is not an event: it is diagnostic text, kept per attempt under ``<job>/<attempt>`` in the
bucket ``<PREFIX>_LOGS`` (file storage, a week by default) so that ``ffrtmp jobs logs`` can show
why an attempt failed on a machine nobody can log into. The agent writes it once the attempt
has ended; ``read_log`` is the reader the CLI uses. Its first line is the attempt's exact
command line (``$ ffmpeg …``, shell-quoted), stored as soon as the attempt starts, so
``jobs status`` and ``jobs logs`` show what runs while it runs.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Sequence
from typing import Final

from nats.js.client import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.object_store import ObjectStore

from events.errors import FfrtmpError
from events.natserrors import failing_as
from events.streams import SETUP_HINT
from events.subjects import Subjects

MAX_LOG_BYTES: Final = 64 * 1024
"""The most of one attempt's log tail that is kept (its end)."""


class LogNotFound(FfrtmpError):
    """No log is stored for this attempt."""

    def __init__(self, job: str, attempt: int) -> None:
        """Name the attempt."""
        super().__init__(
            f"no log stored for job {job} attempt {attempt}: it has not ended yet, "
            "left no output, or its log expired"
        )
        self.job = job
        self.attempt = attempt


COMMAND_MARK: Final = "$ "


def command_line(argv: Sequence[str]) -> bytes:
    """The first line of an attempt's log: its command, quoted as a shell would need it."""
    return f"{COMMAND_MARK}{shlex.join(argv)}\n".encode()


def command_of(log: bytes) -> str:
    """The command line a stored log starts with; empty when it has none."""
    first = log.split(b"\n", 1)[0].decode(errors="replace")
    return first.removeprefix(COMMAND_MARK) if first.startswith(COMMAND_MARK) else ""


def log_key(job: str, attempt: int) -> str:
    """The object name of one attempt's log."""
    return f"{job}/{attempt}"


def _boundary(action: str) -> contextlib.AbstractContextManager[None]:
    """NATS failures of ``action`` as one ffrtmp error naming what failed."""
    return failing_as(
        lambda exc: FfrtmpError(f"attempt logs: {action} failed: {type(exc).__name__} {exc}")
    )


async def open_logs(js: JetStreamContext, subjects: Subjects) -> ObjectStore:
    """Bind the bucket the setup step made (``events.streams``); missing: one line."""
    bucket = subjects.log_bucket
    with _boundary(f"opening {bucket}"):
        try:
            return await js.object_store(bucket)
        except (BucketNotFoundError, NotFoundError):  # acted on: the setup has not run
            raise FfrtmpError(f"log bucket {bucket} does not exist: {SETUP_HINT}") from None


async def store_log(logs: ObjectStore, job: str, attempt: int, tail: bytes) -> None:
    """Keep the last ``MAX_LOG_BYTES`` of ``tail`` as the attempt's log."""
    with _boundary(f"storing {log_key(job, attempt)}"):
        await logs.put(log_key(job, attempt), tail[-MAX_LOG_BYTES:])


async def read_log(js: JetStreamContext, subjects: Subjects, job: str, attempt: int) -> bytes:
    """The stored log tail of ``job``'s attempt ``attempt``; ``LogNotFound`` if there is none."""
    bucket = subjects.log_bucket
    with _boundary(f"reading {log_key(job, attempt)}"):
        try:
            logs = await js.object_store(bucket)
            result = await logs.get(log_key(job, attempt))
        except NotFoundError as exc:  # acted on: that attempt has no log stored
            raise LogNotFound(job, attempt) from exc
    return result.data or b""
