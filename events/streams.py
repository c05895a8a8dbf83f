"""The streams and buckets of a farm, declared as data, and the setup step that applies them.

Each builder is pure: ``Subjects`` in, a nats-py config out, so a test can read the declared
shape without a server. ``ensure_streams`` is the setup step (``ffrtmp streams create``, run by
``ffrtmp up`` and ``ffrtmp server``): it creates each stream and bucket, or updates it to the
declared config, so running it again is safe. Processes do not create anything: they bind to
what exists, and a missing part is one line that names this step (``SETUP_HINT``), because
under per-role users only the setup's user may create streams.

Every bucket takes the events stream's replica count: the lease, the snapshots and the
attempt logs survive whatever node loss the log survives.

Why each setting:
- EVENTS keeps everything (limits retention with no limits), refuses deletes and purges (events
  are never deleted), dedups retried appends for two minutes, serves direct gets (fast ``load``)
  and accepts atomic batches. It takes ``EVENTS_MAX_CONSUMERS`` consumers: each agent holds one
  (its assignments), and nats-server 2.15 refuses the 1,001st when the stream names no limit.
- CMDS and WORK are work queues: a message is gone once a consumer acknowledges it, and stays
  while nobody runs.
- HB keeps the last heartbeat per agent for a while; it lives in memory because telemetry is
  replaced every few seconds and is not worth an fsync each.
- DLQ keeps what consumers set aside (``<prefix>.dlq.>``) on disk for a week, bounded in count
  and message size, the oldest dropped first: an operator can read why a message was thrown
  away, and a flood of junk cannot grow it past 10,000 letters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Final

from nats.aio.client import Client as NatsClient
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import APIError, NotFoundError

from events.errors import FfrtmpError
from events.natserrors import refused_as
from events.subjects import Subjects, object_stream

DUPLICATE_WINDOW_S: Final = 120.0
"""How long a ``Nats-Msg-Id`` is remembered: a retried append within it is a no-op."""
MAX_EVENT_BYTES: Final = 1 << 20
"""Largest event the stream accepts, equal to the server's ``max_payload``."""
HEARTBEAT_MAX_AGE_S: Final = 3600.0
"""A silent agent's last heartbeat stays visible this long, then disappears."""
UNLIMITED: Final = -1
EVENTS_MAX_CONSUMERS: Final = 10_000
"""Consumers the events stream takes: one per agent, plus readers (the server's default: 1,000)."""
DEFAULT_LEASE_TTL_S: Final = 5.0
"""The scheduler's lease time: a standby takes over at most this long after a leader dies."""
LOG_TTL_S: Final = 7 * 86_400.0
"""How long an attempt's FFmpeg stderr tail is kept."""
DEAD_LETTER_MAX_AGE_S: Final = 7 * 86_400.0
"""How long a dead letter is kept."""
DEAD_LETTER_MAX_MSGS: Final = 10_000
"""The most dead letters kept; past it the oldest go. With each at most ``MAX_EVENT_BYTES``, this
bounds the bytes too. No ``max_bytes``: nats-server reserves a stream's ``max_bytes`` from its
``max_file_store`` when the stream is made, which would cost every farm that room up front."""
SETUP_HINT: Final = (
    "run the setup step `ffrtmp streams create` (as a user allowed to create streams, e.g. "
    "`scheduler`; `ffrtmp up` and `ffrtmp server` run it themselves)"
)

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
        max_consumers=EVENTS_MAX_CONSUMERS,
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


def dead_letter_stream(subjects: Subjects, replicas: int = 1) -> StreamConfig:
    """What consumers set aside, kept a week and bounded, the oldest discarded first."""
    return StreamConfig(
        name=subjects.dead_letter_stream,
        description="ffrtmp dead letters: messages consumers set aside, and why",
        subjects=[subjects.all_dead_letters],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=DEAD_LETTER_MAX_AGE_S,
        max_msgs=DEAD_LETTER_MAX_MSGS,
        max_msg_size=MAX_EVENT_BYTES,
        num_replicas=replicas,
    )


def all_streams(subjects: Subjects, replicas: int = 1) -> list[StreamConfig]:
    """The five streams, events first."""
    builders = (events_stream, commands_stream, work_stream, heartbeat_stream, dead_letter_stream)
    return [build(subjects, replicas) for build in builders]


def lease_bucket(
    subjects: Subjects, replicas: int = 1, ttl_s: float = DEFAULT_LEASE_TTL_S
) -> KeyValueConfig:
    """The leader lease: one key whose max age is the lease time, history 1, on disk."""
    return KeyValueConfig(
        bucket=subjects.lease_bucket,
        description="ffrtmp scheduler leader lease",
        history=1,
        ttl=ttl_s,
        storage=StorageType.FILE,
        replicas=replicas,
    )


def object_buckets(subjects: Subjects, replicas: int = 1) -> list[ObjectStoreConfig]:
    """The scheduler's snapshots and the attempts' logs (kept ``LOG_TTL_S``), on disk."""
    return [
        ObjectStoreConfig(
            bucket=subjects.snapshot_bucket,
            description="ffrtmp scheduler snapshots",
            storage=StorageType.FILE,
            replicas=replicas,
        ),
        ObjectStoreConfig(
            bucket=subjects.log_bucket,
            description="ffrtmp attempt logs (FFmpeg stderr tails)",
            storage=StorageType.FILE,
            ttl=LOG_TTL_S,
            replicas=replicas,
        ),
    ]


def bucket_streams(subjects: Subjects) -> list[str]:
    """The streams JetStream keeps the buckets in (``KV_…``, ``OBJ_…``)."""
    return [
        subjects.lease_stream,
        subjects.snapshot_stream,
        subjects.log_stream,
    ]


async def ensure_streams(
    js_or_nc: JetStreamContext | NatsClient,
    subjects: Subjects,
    replicas: int | None = None,
    *,
    lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
) -> list[str]:
    """The setup step: create every stream and bucket, or update it; the names, in order.

    ``replicas`` None keeps an existing stream's replica count (and creates new ones with 1), so
    a process starting with the defaults never shrinks a cluster's R3 streams to R1. Buckets
    take the events stream's count. An existing lease keeps its lease time.
    """
    js = js_or_nc.jetstream() if isinstance(js_or_nc, NatsClient) else js_or_nc
    for config in all_streams(subjects, replicas or 1):
        await _ensure(js, config, keep_replicas=replicas is None)
    count = int((await js.stream_info(subjects.events_stream)).config.num_replicas or 1)
    lease = lease_bucket(subjects, count, lease_ttl_s)
    kv_stream = subjects.lease_stream
    await _ensure_bucket(js, kv_stream, count, partial(js.create_key_value, lease))
    for bucket in object_buckets(subjects, count):
        stream = object_stream(str(bucket.bucket))
        create = partial(js.create_object_store, str(bucket.bucket), config=bucket)
        await _ensure_bucket(js, stream, count, create)
    return [str(c.name) for c in all_streams(subjects)] + bucket_streams(subjects)


async def _ensure_bucket(
    js: JetStreamContext, stream: str, replicas: int, create: Callable[[], Awaitable[object]]
) -> None:
    """Create a bucket that is missing; give an existing one the log's replica count."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:  # acted on: a missing bucket is made
        with refused_as(f"cannot create {stream}"):
            await create()
        return
    if (info.config.num_replicas or 1) != replicas:
        info.config.num_replicas = replicas
        with refused_as(f"cannot update {stream}"):
            await js.update_stream(info.config)


async def require_streams(js: JetStreamContext, names: Iterable[str]) -> None:
    """Check that the setup step made these streams; a missing one is one line saying so."""
    for name in names:
        try:
            await js.stream_info(name)
        except NotFoundError:  # acted on: the one line names the setup step, not the API error
            raise FfrtmpError(f"stream {name} does not exist: {SETUP_HINT}") from None


async def _ensure(js: JetStreamContext, config: StreamConfig, *, keep_replicas: bool) -> None:
    with refused_as(f"cannot create stream {config.name}"):
        if await _added(js, config):
            return
    with refused_as(f"cannot update stream {config.name}"):
        if keep_replicas:
            info = await js.stream_info(str(config.name))
            config.num_replicas = info.config.num_replicas
        await js.update_stream(config)


async def _added(js: JetStreamContext, config: StreamConfig) -> bool:
    """Whether the stream was made; False when one of its name is there to update."""
    try:
        await js.add_stream(config)
    except APIError as exc:  # acted on: a stream of this name exists, so update it
        if exc.err_code == ERR_STREAM_NAME_IN_USE:
            return False
        raise
    return True
