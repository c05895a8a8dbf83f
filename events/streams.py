"""The four JetStream streams of the log, declared as data, and the one call that applies them.

Each builder is pure: ``Subjects`` in, a nats-py ``StreamConfig`` out, so a test can read the
declared shape without a server. ``ensure_streams`` is the only I/O here: it creates a stream,
or updates it to the declared config when it exists, so running it on every start is safe.

Why each setting:
- EVENTS keeps everything (limits retention with no limits), refuses deletes and purges (events
  are never deleted), dedups retried appends for two minutes, serves direct gets (fast ``load``)
  and accepts atomic batches.
- CMDS and WORK are work queues: a message is gone once a consumer acknowledges it, and stays
  while nobody runs.
- HB keeps the last heartbeat per agent for a while; it lives in memory because telemetry is
  replaced every few seconds and is not worth an fsync each.
"""

from __future__ import annotations

from typing import Final

from nats.aio.client import Client as NatsClient
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import APIError

from events.errors import FfrtmpError
from events.subjects import Subjects

DUPLICATE_WINDOW_S: Final = 120.0
"""How long a ``Nats-Msg-Id`` is remembered: a retried append within it is a no-op."""
MAX_EVENT_BYTES: Final = 1 << 20
"""Largest event the stream accepts, equal to the server's ``max_payload``."""
HEARTBEAT_MAX_AGE_S: Final = 3600.0
"""A silent agent's last heartbeat stays visible this long, then disappears."""
UNLIMITED: Final = -1

ERR_STREAM_NAME_IN_USE: Final = 10058  # a stream of that name exists with another config


def events_stream(subjects: Subjects, replicas: int = 1) -> StreamConfig:
    """The source of truth: every event, kept forever, never edited."""
    return StreamConfig(
        name=subjects.events_stream,
        description="ffrtmp events: the source of truth",
        subjects=[subjects.all_events],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        max_msgs=UNLIMITED,
        max_bytes=UNLIMITED,
        max_age=0,
        max_msg_size=MAX_EVENT_BYTES,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        deny_delete=True,
        deny_purge=True,
        allow_direct=True,
        allow_atomic=True,
    )


def _work_queue(name: str, description: str, subject: str, replicas: int) -> StreamConfig:
    """A file-backed work queue: each message kept until one consumer acknowledges it."""
    return StreamConfig(
        name=name,
        description=description,
        subjects=[subject],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
    )


def commands_stream(subjects: Subjects, replicas: int = 1) -> StreamConfig:
    """Operator intents: durable while no scheduler runs, gone once one acknowledges them."""
    return _work_queue(
        subjects.commands_stream, "ffrtmp operator commands", subjects.all_commands, replicas
    )


def work_stream(subjects: Subjects, replicas: int = 1) -> StreamConfig:
    """Dispatches and control messages, one subject per agent, each read by that agent."""
    return _work_queue(
        subjects.work_stream,
        "ffrtmp dispatches and control messages",
        subjects.all_work,
        replicas,
    )


def heartbeat_stream(subjects: Subjects, replicas: int = 1) -> StreamConfig:
    """The last heartbeat of each agent, for a while."""
    return StreamConfig(
        name=subjects.heartbeat_stream,
        description="ffrtmp heartbeats and live telemetry",
        subjects=[subjects.all_heartbeats],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.MEMORY,
        max_msgs_per_subject=1,
        max_age=HEARTBEAT_MAX_AGE_S,
        num_replicas=replicas,
        allow_direct=True,
    )


def all_streams(subjects: Subjects, replicas: int = 1) -> list[StreamConfig]:
    """The four streams, events first."""
    builders = (events_stream, commands_stream, work_stream, heartbeat_stream)
    return [build(subjects, replicas) for build in builders]


async def ensure_streams(
    js_or_nc: JetStreamContext | NatsClient, subjects: Subjects, replicas: int | None = None
) -> None:
    """Create each stream, or update it to the declared config; safe to run on every start.

    ``replicas`` None keeps an existing stream's replica count (and creates new ones with 1), so
    a process starting with the defaults never shrinks a cluster's R3 streams to R1.
    """
    js = js_or_nc.jetstream() if isinstance(js_or_nc, NatsClient) else js_or_nc
    for config in all_streams(subjects, replicas or 1):
        await _ensure(js, config, keep_replicas=replicas is None)


async def _ensure(js: JetStreamContext, config: StreamConfig, *, keep_replicas: bool) -> None:
    try:
        await js.add_stream(config)
    except APIError as exc:
        if exc.err_code != ERR_STREAM_NAME_IN_USE:
            raise FfrtmpError(f"cannot create stream {config.name}: {exc.description}") from exc
    else:
        return
    try:
        if keep_replicas:
            info = await js.stream_info(str(config.name))
            config.num_replicas = info.config.num_replicas
        await js.update_stream(config)
    except APIError as exc:
        raise FfrtmpError(f"cannot update stream {config.name}: {exc.description}") from exc
