"""NATS users per role with subject permissions: a pure generator of the ``authorization`` block.

Plain nats.conf users have no templates (``{{name()}}`` needs JWT auth), so each agent gets a
user of its own, generated from the agent list: ``ffrtmp auth conf --agents a,b``. What each
role may do, under prefix ``P`` (the JetStream API is reached by publishing to ``$JS.API.…``;
replies come back on ``_INBOX.>``, the only subject most roles may subscribe to):

- **agent** ``<id>``: append its own job and agent events (``P.evt.job.*.<id>``,
  ``P.evt.agent.<id>``), heartbeat on ``P.hb.<id>``, dead-letter on ``P.dlq.agent-<id>``; create
  and pull its durable consumer ``agent-<id>`` only with its own work subject as the filter (the
  filter is part of the API subject), acknowledge that consumer's messages; read job histories
  by direct get. Nothing else: not another agent's subjects, not commands, not dispatches.
- **operator** (the CLI): publish commands (``P.cmd.>``), ask the projector's SQL service
  (``P.api.>``) and read: stream info, direct gets, ephemeral consumers on the events and
  heartbeat streams.
- **exporter**: read only: the same reads as the operator, no command, and the scheduler's lease
  (``STREAM.MSG.GET`` on its KV stream) for ``ffrtmp_scheduler_up``.
- **projector**: read the log, set aside on ``P.dlq.projector``, serve ``P.api.>`` (a NATS
  micro service: it also answers ``$SRV.>`` discovery) and reply to the askers.
- **scheduler**: the control plane: its own job events, agent events, dispatches, the whole
  JetStream API (streams, its consumer, the lease KV and snapshot object store), heartbeats.

Passwords are never written into the file: each is ``$FFRTMP_PASS_<USER>``, which nats-server
reads from its environment when the file does not define it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Final

import msgspec

from events.errors import InvalidSpec
from events.subjects import SCHEDULER_WRITER, Subjects
from ffrtmp.scheduler.lease import lease_bucket

INBOX: Final = "_INBOX.>"
API: Final = "$JS.API"


class Role(StrEnum):
    """Who connects."""

    OPERATOR = "operator"
    SCHEDULER = "scheduler"
    AGENT = "agent"
    PROJECTOR = "projector"
    EXPORTER = "exporter"


class User(msgspec.Struct, frozen=True, kw_only=True):
    """One NATS user: name, role and what it may publish and subscribe to."""

    name: str
    role: Role
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responses: bool = False  # may answer requests (a service), whatever their reply subject


def agent_user(agent: str) -> str:
    """The NATS user name of an agent (also its durable consumer's name)."""
    return f"agent-{agent}"


def password_variable(user: str) -> str:
    """The environment variable nats-server reads the user's password from."""
    return "FFRTMP_PASS_" + user.upper().replace("-", "_")


def _job_events_by(subjects: Subjects, writer: str) -> str:
    """Every job's events written by ``writer`` (``Subjects`` refuses a wildcard job id)."""
    subjects.job_event("job", writer)  # refuses a writer that is not one token
    return f"{subjects.prefix}.evt.job.*.{writer}"


def _reads(subjects: Subjects) -> list[str]:
    """Reading the log and the heartbeats: stream info, direct gets, ephemeral push consumers."""
    found = [f"{API}.INFO", f"{API}.STREAM.NAMES", f"{API}.STREAM.LIST", f"{API}.STREAM.INFO.*"]
    for stream in (subjects.events_stream, subjects.heartbeat_stream):
        found += [
            f"{API}.DIRECT.GET.{stream}",
            f"{API}.DIRECT.GET.{stream}.>",
            f"{API}.CONSUMER.CREATE.{stream}",  # ephemeral, ack none: a read
            f"{API}.CONSUMER.DELETE.{stream}.*",
            f"$JS.FC.{stream}.>",  # flow-control answers of a push consumer
        ]
    return found


def _lease_read(subjects: Subjects) -> str:
    """Reading the leader lease (a KV get; the bucket has no direct gets): who leads, since when."""
    return f"{API}.STREAM.MSG.GET.KV_{lease_bucket(subjects)}"


def _agent(subjects: Subjects, agent: str) -> User:
    name = agent_user(agent)
    work, events = subjects.work_stream, subjects.events_stream
    publish = [
        _job_events_by(subjects, agent),
        subjects.agent_event(agent),
        subjects.heartbeat(agent),
        subjects.dead_letter(name),
        f"{API}.INFO",
        f"{API}.STREAM.INFO.{events}",
        f"{API}.STREAM.INFO.{work}",
        f"{API}.DIRECT.GET.{events}",
        f"{API}.DIRECT.GET.{events}.>",
        f"{API}.CONSUMER.INFO.{work}.{name}",
        f"{API}.CONSUMER.CREATE.{work}.{name}.{subjects.work(agent)}",
        f"{API}.CONSUMER.MSG.NEXT.{work}.{name}",
        f"$JS.ACK.{work}.{name}.>",
    ]
    return User(name=name, role=Role.AGENT, publish=tuple(publish), subscribe=(INBOX,))


def _scheduler(subjects: Subjects) -> User:
    publish = (
        _job_events_by(subjects, SCHEDULER_WRITER),
        f"{subjects.prefix}.evt.agent.*",
        subjects.all_work,
        f"{subjects.prefix}.dlq.>",
        f"{API}.>",
        "$JS.ACK.>",
        "$JS.FC.>",
        "$KV.>",
        "$O.>",
    )
    subscribe = (INBOX, subjects.all_heartbeats)
    return User(name="scheduler", role=Role.SCHEDULER, publish=publish, subscribe=subscribe)


def users(subjects: Subjects, agents: Sequence[str]) -> list[User]:
    """Every user of a farm with these agents."""
    for agent in agents:
        subjects.work(agent)  # refuses an id that is not one subject token
        if agent == SCHEDULER_WRITER:
            raise InvalidSpec("agents", f"{agent!r} is the scheduler's writer name; rename it")
    if len(set(agents)) != len(agents):
        raise InvalidSpec("agents", "an agent is listed twice")
    reads = tuple(_reads(subjects))
    found = [
        User(
            name="operator",
            role=Role.OPERATOR,
            publish=(subjects.all_commands, f"{subjects.prefix}.api.>", *reads),
            subscribe=(INBOX,),
        ),
        _scheduler(subjects),
        User(
            name="projector",
            role=Role.PROJECTOR,
            publish=(subjects.dead_letter("projector"), *reads),
            subscribe=(INBOX, f"{subjects.prefix}.api.>", "$SRV.>"),
            responses=True,
        ),
        User(
            name="exporter",
            role=Role.EXPORTER,
            publish=(*reads, _lease_read(subjects)),
            subscribe=(INBOX,),
        ),
    ]
    return found + [_agent(subjects, agent) for agent in agents]


def _list(items: Iterable[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"


def render(subjects: Subjects, agents: Sequence[str]) -> str:
    """The ``authorization`` block for nats.conf (include it, or paste it in)."""
    lines = [
        "# Generated by `ffrtmp auth conf`; regenerate when the agent list changes.",
        f"# Prefix {subjects.prefix!r}; passwords come from the environment (FFRTMP_PASS_<USER>).",
        "authorization {",
        "  users = [",
    ]
    for user in users(subjects, agents):
        lines += [
            f"    {{ user: {user.name}, password: ${password_variable(user.name)}",
            "      permissions: {",
            f"        publish: {{ allow: {_list(user.publish)} }}",
            f"        subscribe: {{ allow: {_list(user.subscribe)} }}",
            *(["        allow_responses: true"] if user.responses else []),
            "      } }",
        ]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)
