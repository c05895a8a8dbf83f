"""Every wire name in one place: subjects, stream and bucket names, JetStream headers.

Names carry a prefix so tests and tenants share one server: with prefix ``ffrtmp`` the events
stream is ``FFRTMP_EVENTS`` and a job's events live on ``ffrtmp.evt.job.<job>.<writer>``, where
``<writer>`` is ``sched`` or an agent id, so NATS permissions can pin each agent to its own
subjects. An assignment names its agent after the writer, ``ffrtmp.evt.job.<job>.sched.<agent>``:
it is the agent's dispatch, read by the agent's consumer filtered on that last token.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from events.errors import InvalidSpec

DEFAULT_PREFIX: Final = "ffrtmp"
SCHEDULER_WRITER: Final = "sched"

# Headers JetStream reads on publish. nats-py names only some of them.
MSG_ID: Final = "Nats-Msg-Id"
"""Dedup key: a second publish with the same id inside the window is acknowledged, not stored."""
EXPECTED_LAST_SUBJECT_SEQ: Final = "Nats-Expected-Last-Subject-Sequence"
"""Optimistic concurrency: refuse unless this is the last sequence on the filter subject."""
EXPECTED_LAST_SUBJECT_SEQ_SUBJECT: Final = "Nats-Expected-Last-Subject-Sequence-Subject"
"""The (wildcard) subject the expected sequence is checked against (nats-server 2.11+)."""
BATCH_ID: Final = "Nats-Batch-Id"
"""Atomic batch: the id shared by every message of one batch (nats-server 2.12+)."""
BATCH_SEQUENCE: Final = "Nats-Batch-Sequence"
"""Atomic batch: 1-based position of the message in its batch."""
BATCH_COMMIT: Final = "Nats-Batch-Commit"
"""Atomic batch: ``1`` on the last message commits the batch."""

# Headers the server sets on what it delivers.
STATUS: Final = "Status"
"""A status message (no payload): 100 heartbeat/flow control, 204 end of batch, 404, 503 …"""
NUM_PENDING: Final = "Nats-Num-Pending"
"""On a direct get: how many matching messages remain after this one."""
SEQUENCE: Final = "Nats-Sequence"
"""On a direct get: the message's stream sequence."""
STORED_SUBJECT: Final = "Nats-Subject"
"""On a direct get: the subject the message was stored on (its writer's token)."""
LAST_CONSUMER: Final = "Nats-Last-Consumer"
"""On an idle heartbeat: the last delivery sequence the server sent."""
CONSUMER_STALLED: Final = "Nats-Consumer-Stalled"
"""On an idle heartbeat: a flow-control reply the server still waits for."""

# JetStream's own subjects (what NATS permissions name; nats-py builds them inside).
JS_API: Final = "$JS.API"
"""Every JetStream API request goes to ``$JS.API.<verb>…``: create, info, direct get, next …"""
JS_ACK: Final = "$JS.ACK"
"""Acknowledgements: ``$JS.ACK.<stream>.<consumer>.…``."""
JS_FLOW: Final = "$JS.FC"
"""Flow-control answers of a push consumer: ``$JS.FC.<stream>.…``."""
KV_PREFIX: Final = "$KV"
"""A KV bucket's keys: ``$KV.<bucket>.<key>``."""
OBJECT_PREFIX: Final = "$O"
"""An object store's chunks and metadata: ``$O.<bucket>.C.…``, ``$O.<bucket>.M.…``."""
SERVICE_DISCOVERY: Final = "$SRV.>"
"""NATS micro service discovery (``$SRV.PING`` / ``INFO`` / ``STATS``)."""


def js_api(*tokens: str) -> str:
    """A JetStream API subject: ``js_api("STREAM", "INFO", name)``."""
    return ".".join((JS_API, *tokens))


def js_ack(*tokens: str) -> str:
    """An acknowledgement subject: ``js_ack(stream, consumer, ">")``."""
    return ".".join((JS_ACK, *tokens))


def js_flow(*tokens: str) -> str:
    """A flow-control answer's subject: ``js_flow(stream, ">")``."""
    return ".".join((JS_FLOW, *tokens))


def kv_stream(bucket: str) -> str:
    """The stream JetStream keeps a KV bucket in (nats-py's ``KV_STREAM_TEMPLATE``)."""
    return f"KV_{bucket}"


def object_stream(bucket: str) -> str:
    """The stream JetStream keeps an object store in (nats-py's ``OBJ_STREAM_TEMPLATE``)."""
    return f"OBJ_{bucket}"


def object_chunks(bucket: str, nuid: str = ">") -> str:
    """An object's chunks (``$O.<bucket>.C.<nuid>``); every object's by default."""
    return f"{OBJECT_PREFIX}.{bucket}.C.{nuid}"


def object_meta(bucket: str, name: str = ">") -> str:
    """An object's metadata (``$O.<bucket>.M.<encoded name>``); every object's by default."""
    return f"{OBJECT_PREFIX}.{bucket}.M.{name}"


ALL_KV: Final = f"{KV_PREFIX}.>"
"""Every key of every KV bucket."""
ALL_OBJECTS: Final = f"{OBJECT_PREFIX}.>"
"""Every chunk and metadata of every object store."""


# JetStream API error codes (err_code) we translate.
ERR_WRONG_LAST_SEQUENCE: Final = 10071  # JSStreamWrongLastSequenceErrF
ERR_WRONG_LAST_SEQUENCE_CONSTANT: Final = 10164  # JSStreamWrongLastSequenceConstantErr
ERR_STREAM_NOT_FOUND: Final = 10059  # JSStreamNotFoundErr
ERR_NO_MESSAGE_FOUND: Final = 10037  # JSNoMessageFoundErr

# Matched whole (``fullmatch``): ``$`` also matches before a trailing newline, and a subject with
# one is refused by the server. A token is bounded so no subject nears the server's control line.
_PREFIX: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_TOKEN: Final = re.compile(r"[^.*>\s\x00-\x1f\x7f]{1,128}")


def _token(value: str, what: str) -> str:
    if not _TOKEN.fullmatch(value):
        raise InvalidSpec(
            what,
            f"{value[:80]!r} cannot be a NATS subject token (1-128 characters; no '.', '*',"
            " '>', spaces or control characters)",
        )
    return value


def parse_job_subject(subject: str) -> tuple[str, str] | None:
    """``(job, writer)`` of a job event subject, whatever its prefix; None for any other.

    Both shapes: ``…evt.job.<job>.<writer>`` and an assignment's ``…evt.job.<job>.sched.<agent>``
    (the scheduler's). The one reading of the shape: the store's admission, the readers and the
    listings all ask here.
    """
    parts = subject.split(".")
    if parts[1:3] != ["evt", "job"]:
        return None
    if len(parts) == 5 or (len(parts) == 6 and parts[4] == SCHEDULER_WRITER):
        return parts[3], parts[4]
    return None


class Subjects(msgspec.Struct, frozen=True):
    """Subject and stream names under one prefix."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        """Refuse a prefix that would make invalid subjects or stream names."""
        if not _PREFIX.fullmatch(self.prefix):
            raise InvalidSpec("prefix", f"{self.prefix!r}: use 1-32 of a-z, 0-9, '_', '-'")

    # streams
    @property
    def events_stream(self) -> str:
        """The source of truth."""
        return f"{self._upper}_EVENTS"

    @property
    def commands_stream(self) -> str:
        """Operator intents, a work queue."""
        return f"{self._upper}_CMDS"

    @property
    def work_stream(self) -> str:
        """Dispatches and control messages, one subject per agent."""
        return f"{self._upper}_WORK"

    @property
    def heartbeat_stream(self) -> str:
        """Last heartbeat per agent."""
        return f"{self._upper}_HB"

    @property
    def dead_letter_stream(self) -> str:
        """Messages consumers set aside, kept a while so an operator can read why."""
        return f"{self._upper}_DLQ"

    # buckets (KV and object stores; JetStream keeps each in a stream of its own)
    @property
    def lease_bucket(self) -> str:
        """The KV bucket of the scheduler's leader lease."""
        return f"{self._upper}_SCHEDULER_LEASE"

    @property
    def snapshot_bucket(self) -> str:
        """The object store of the scheduler's snapshots."""
        return f"{self._upper}_SNAPSHOTS"

    @property
    def log_bucket(self) -> str:
        """The object store of the attempts' FFmpeg stderr tails."""
        return f"{self._upper}_LOGS"

    @property
    def lease_stream(self) -> str:
        """The stream that holds the lease bucket."""
        return kv_stream(self.lease_bucket)

    @property
    def snapshot_stream(self) -> str:
        """The stream that holds the snapshots."""
        return object_stream(self.snapshot_bucket)

    @property
    def log_stream(self) -> str:
        """The stream that holds the attempts' logs."""
        return object_stream(self.log_bucket)

    @property
    def _upper(self) -> str:
        return self.prefix.upper().replace("-", "_")

    # events
    def job_event(self, job: str, writer: str) -> str:
        """Where ``writer`` appends events of ``job``."""
        return f"{self.prefix}.evt.job.{_token(job, 'job id')}.{_token(writer, 'writer')}"

    def job_events(self, job: str) -> str:
        """All of one job's events, whoever wrote them: the concurrency filter.

        ``>`` rather than ``*``: an assignment's subject has one token more (``assignment``).
        Measured (``ffrtmp bench append --history``): the check costs the same either way.
        """
        return f"{self.prefix}.evt.job.{_token(job, 'job id')}.>"

    def assignment(self, job: str, agent: str) -> str:
        """Where the scheduler appends ``JobAssigned`` of ``job`` to ``agent``: its dispatch."""
        return f"{self.job_event(job, SCHEDULER_WRITER)}.{_token(agent, 'agent id')}"

    def assignments_to(self, agent: str) -> str:
        """Every job's assignments to ``agent``: the filter of the agent's events consumer."""
        return f"{self.prefix}.evt.job.*.{SCHEDULER_WRITER}.{_token(agent, 'agent id')}"

    def agent_event(self, agent: str) -> str:
        """Where an agent's lifecycle events go."""
        return f"{self.prefix}.evt.agent.{_token(agent, 'agent id')}"

    @property
    def all_events(self) -> str:
        """Every subject of the events stream."""
        return f"{self.prefix}.evt.>"

    @property
    def all_job_events(self) -> str:
        """Every job's events, whoever wrote them, assignments too (and no agent's)."""
        return f"{self.prefix}.evt.job.*.>"

    # commands, work, heartbeats
    def command(self, verb: str) -> str:
        """Where an operator command with this verb is sent."""
        return f"{self.prefix}.cmd.{_token(verb, 'verb')}"

    @property
    def all_commands(self) -> str:
        """Every command subject."""
        return f"{self.prefix}.cmd.>"

    def work(self, agent: str) -> str:
        """An agent's work subject: dispatches and control messages."""
        return f"{self.prefix}.work.{_token(agent, 'agent id')}"

    @property
    def all_work(self) -> str:
        """Every work subject."""
        return f"{self.prefix}.work.>"

    def heartbeat(self, agent: str) -> str:
        """An agent's heartbeat subject."""
        return f"{self.prefix}.hb.{_token(agent, 'agent id')}"

    @property
    def all_heartbeats(self) -> str:
        """Every heartbeat subject."""
        return f"{self.prefix}.hb.>"

    def job_events_by(self, writer: str) -> str:
        """Every job's events written by ``writer``: what permissions let that writer append."""
        return f"{self.prefix}.evt.job.*.{_token(writer, 'writer')}"

    @property
    def all_assignments(self) -> str:
        """Every job's assignment to any agent: the scheduler alone may append there."""
        return f"{self.prefix}.evt.job.*.{SCHEDULER_WRITER}.*"

    @property
    def all_agent_events(self) -> str:
        """Every agent's lifecycle events."""
        return f"{self.prefix}.evt.agent.*"

    @property
    def submit_request(self) -> str:
        """Where a submit is asked of the leading scheduler (``events.submit_answer``).

        Outside every stream's subjects: a stream capturing it would answer the request with
        its own acknowledgement before the scheduler could.
        """
        return f"{self.prefix}.rpc.submit"

    @property
    def all_api(self) -> str:
        """Every request subject of the farm's services (the projector's SQL is ``…api.sql``)."""
        return f"{self.prefix}.api.>"

    @property
    def all_dead_letters(self) -> str:
        """Every dead-letter subject."""
        return f"{self.prefix}.dlq.>"

    def dead_letter(self, source: str) -> str:
        """Where a consumer sets aside a message that keeps failing (stored in the DLQ stream)."""
        return f"{self.prefix}.dlq.{_token(source, 'source')}"

    def parse_job_subject(self, subject: str) -> tuple[str, str] | None:
        """``(job, writer)`` of a job event subject, or None for any other subject."""
        return parse_job_subject(subject)
