"""Bucket and bucket-stream names come from ``events.subjects`` and match what nats-py builds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from nats.js.client import KV_PRE_TEMPLATE, KV_STREAM_TEMPLATE
from nats.js.object_store import (
    OBJ_ALL_CHUNKS_PRE_TEMPLATE,
    OBJ_ALL_META_PRE_TEMPLATE,
    OBJ_CHUNKS_PRE_TEMPLATE,
    OBJ_STREAM_TEMPLATE,
)

from events.streams import bucket_streams
from events.subjects import ALL_KV, ALL_OBJECTS, Subjects, object_chunks, object_meta

prefixes = st.from_regex(r"[a-z][a-z0-9_-]{0,31}", fullmatch=True)


@given(prefixes)
def test_our_bucket_streams_are_the_ones_nats_py_creates(prefix: str) -> None:
    """The streams authconf and the setup step name are where nats-py keeps the buckets."""
    s = Subjects(prefix)
    assert s.lease_stream == KV_STREAM_TEMPLATE.format(bucket=s.lease_bucket)
    assert s.snapshot_stream == OBJ_STREAM_TEMPLATE.format(bucket=s.snapshot_bucket)
    assert s.log_stream == OBJ_STREAM_TEMPLATE.format(bucket=s.log_bucket)
    assert bucket_streams(s) == [s.lease_stream, s.snapshot_stream, s.log_stream]


@given(prefixes, st.text("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=22))
def test_object_subjects_are_the_ones_nats_py_publishes_on(prefix: str, nuid: str) -> None:
    """An agent allowed ``object_chunks``/``object_meta`` of its bucket can store a log there."""
    bucket = Subjects(prefix).log_bucket
    assert object_chunks(bucket, nuid) == OBJ_CHUNKS_PRE_TEMPLATE.format(bucket=bucket, obj=nuid)
    assert object_chunks(bucket) == OBJ_ALL_CHUNKS_PRE_TEMPLATE.format(bucket=bucket)
    assert object_meta(bucket) == OBJ_ALL_META_PRE_TEMPLATE.format(bucket=bucket)
    assert KV_PRE_TEMPLATE.format(bucket=bucket).startswith(ALL_KV[:-1])
    assert object_meta(bucket).startswith(ALL_OBJECTS[:-1])


def test_one_prefix_names_every_bucket() -> None:
    """Upper-cased, ``-`` as ``_``: what existing farms already hold."""
    s = Subjects("acme-1")
    assert (s.lease_bucket, s.snapshot_bucket, s.log_bucket) == (
        "ACME_1_SCHEDULER_LEASE",
        "ACME_1_SNAPSHOTS",
        "ACME_1_LOGS",
    )
    assert (s.lease_stream, s.snapshot_stream, s.log_stream) == (
        "KV_ACME_1_SCHEDULER_LEASE",
        "OBJ_ACME_1_SNAPSHOTS",
        "OBJ_ACME_1_LOGS",
    )
