"""The five streams: declared shape, prefixing, and idempotent ensure against a real server."""

from __future__ import annotations

import nats
import pytest
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
)

from events.streams import (
    DUPLICATE_WINDOW_S,
    MAX_EVENT_BYTES,
    all_streams,
    dead_letter_stream,
    ensure_streams,
    events_stream,
    heartbeat_stream,
)
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer

pytestmark = pytest.mark.anyio


def test_names_and_subjects_follow_the_prefix() -> None:
    """Every stream's name and subjects carry the prefix."""
    configs = all_streams(Subjects("acme-1"))
    assert [(c.name, c.subjects) for c in configs] == [
        ("ACME_1_EVENTS", ["acme-1.evt.>"]),
        ("ACME_1_CMDS", ["acme-1.cmd.>"]),
        ("ACME_1_WORK", ["acme-1.work.>"]),
        ("ACME_1_HB", ["acme-1.hb.>"]),
        ("ACME_1_DLQ", ["acme-1.dlq.>"]),
    ]


def test_events_stream_keeps_everything_and_refuses_edits() -> None:
    """The events stream is unlimited, file-backed, undeletable, direct-readable and atomic."""
    config = events_stream(Subjects(), replicas=3)
    assert config.retention == RetentionPolicy.LIMITS
    assert config.storage == StorageType.FILE
    assert (config.max_msgs, config.max_bytes, config.max_age) == (-1, -1, 0)
    assert config.deny_delete
    assert config.deny_purge
    assert config.allow_direct
    assert config.allow_atomic
    assert config.num_replicas == 3
    assert config.duplicate_window == DUPLICATE_WINDOW_S >= 120


def test_queues_are_work_queues_and_heartbeats_keep_one() -> None:
    """Commands and work are work queues; heartbeats keep one message per agent, for a while."""
    _, cmds, work, hb, _ = all_streams(Subjects())
    assert cmds.retention == work.retention == RetentionPolicy.WORK_QUEUE
    assert hb.max_msgs_per_subject == 1
    assert hb.max_age


def test_dead_letters_are_kept_a_week_and_bounded() -> None:
    """Dead letters live on disk, a week at most, bounded in count and size, oldest dropped."""
    dlq = dead_letter_stream(Subjects())
    assert (dlq.retention, dlq.storage, dlq.discard) == (
        RetentionPolicy.LIMITS,
        StorageType.FILE,
        DiscardPolicy.OLD,
    )
    assert dlq.max_age == 7 * 86_400
    assert 0 < (dlq.max_msgs or 0) <= 100_000
    assert dlq.max_msg_size == MAX_EVENT_BYTES
    assert dlq.max_bytes in {None, -1}  # a max_bytes is reserved from the server's store up front


async def test_ensure_is_idempotent(nats_server: NatsServer, prefix: str) -> None:
    """Ensuring twice leaves the same five streams with the declared settings."""
    subjects = Subjects(prefix)
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc, subjects)
        await ensure_streams(nc.jetstream(), subjects)
        js = nc.jetstream()
        names = {str(c.name) for c in all_streams(subjects)}
        infos = [await js.stream_info(name) for name in sorted(names)]
        assert {info.config.name for info in infos} == names
        events = await js.stream_info(subjects.events_stream)
        assert events.config.allow_atomic
        assert events.config.deny_delete
    finally:
        await nc.close()


async def test_ensure_updates_a_changed_stream(nats_server: NatsServer, prefix: str) -> None:
    """A stream whose settings drifted is updated back to the declared config."""
    subjects = Subjects(prefix)
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        drifted = heartbeat_stream(subjects)
        drifted.max_age = 5.0
        await js.add_stream(drifted)
        await ensure_streams(js, subjects)
        info = await js.stream_info(subjects.heartbeat_stream)
        assert info.config.max_age == heartbeat_stream(subjects).max_age
    finally:
        await nc.close()


async def test_the_events_stream_takes_an_assignment_consumer_per_agent_past_1000(
    nats_server: NatsServer, prefix: str
) -> None:
    """1,001 agents' durable consumers fit on the events stream (the server's default is 1,000)."""
    subjects = Subjects(prefix)
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc, subjects)
        js = nc.jetstream()
        for index in range(1_001):
            agent = f"a{index}"
            config = ConsumerConfig(
                durable_name=f"agent-{agent}",
                filter_subject=subjects.assignments_to(agent),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.NEW,
            )
            await js.add_consumer(subjects.events_stream, config)
        info = await js.stream_info(subjects.events_stream)
        assert info.state.consumer_count == 1_001
    finally:
        await nc.close()
