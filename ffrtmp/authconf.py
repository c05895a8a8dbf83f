"""NATS users per role with subject permissions: a pure generator of the ``authorization`` block.

Plain nats.conf users have no templates (``{{name()}}`` needs JWT auth), so each agent gets a
user of its own, generated from the agent list: ``ffrtmp auth conf --agents a,b``. Every name
comes from ``events.subjects`` (the farm's subjects, streams, buckets and JetStream's own
prefixes), so the permissions follow the wire when it changes. Each user gets replies only on
its own inbox, ``_INBOX.<user>.>`` (ffrtmp connects with that inbox prefix, see
``events.connection``): nobody reads another's dispatches, pulled commands or SQL results.

- **agent** ``<id>``: append its own job and agent events, heartbeat on its own subject,
  dead-letter on ``P.dlq.agent-<id>``; create and pull its durable consumers ``agent-<id>``
  only with its own filters (the filter is part of the API subject): its work subject on the
  work stream, its assignments ``P.evt.job.*.sched.<id>`` on the events stream; acknowledge
  those consumers' messages; read job histories by direct get; write its attempts' logs into
  the log bucket. Nothing else: not another agent's subjects, not commands, never an
  assignment (``P.evt.job.*.sched.*`` is the scheduler's alone).
- **operator** (the CLI, the HTTP API): publish commands, ask the leading scheduler to decide
  a submit (``P.rpc.submit``), ask the projector's SQL service and read: stream
  info, direct gets, ephemeral consumers on the events and heartbeat streams, attempt logs,
  the dead letters (one message at a time; nobody but the setup step deletes them).
- **exporter**: read only: the same reads as the operator (the scheduler's lease among them, for
  ``ffrtmp_scheduler_up``), no command, no submit request.
- **projector**: read the log, set aside on ``P.dlq.projector``, serve ``P.api.>`` (a NATS
  micro service: it also answers ``$SRV.>`` discovery) and reply to the askers.
- **scheduler**: the control plane: its own job events and assignments, agent events, control
  messages, the whole JetStream API (so it is also the user that runs the setup step,
  ``ffrtmp streams create``), heartbeats, the submit requests it answers (while leading) and
  the answers themselves, on the asker's inbox.

Passwords are never written into the file: each is ``$FFRTMP_PASS_<USER>``, which nats-server
reads from its environment when the file does not define it. The variable may hold the password
or its bcrypt hash; nats-server parses the variable's value as a config token, so a hash (it
starts with ``$``) must be set with quotes inside it: ``FFRTMP_PASS_X='"$2a$11$…"'``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Final

import msgspec

from events.connection import inbox_for
from events.errors import InvalidSpec
from events.subjects import (
    ALL_KV,
    ALL_OBJECTS,
    SCHEDULER_WRITER,
    SERVICE_DISCOVERY,
    Subjects,
    js_ack,
    js_api,
    js_flow,
    object_chunks,
    object_meta,
)

ALL: Final = ">"


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


def inbox(user: str) -> str:
    """The only reply subjects a user may subscribe to."""
    return f"{inbox_for(user)}.{ALL}"


def _stream_reads(stream: str) -> list[str]:
    """Reading one stream: direct gets, ephemeral push consumers and their flow control."""
    return [
        js_api("DIRECT", "GET", stream),
        js_api("DIRECT", "GET", stream, ALL),
        js_api("STREAM", "MSG", "GET", stream),  # the leader's word where a replica lags
        js_api("CONSUMER", "CREATE", stream),  # ephemeral, ack none: a read
        js_api("CONSUMER", "DELETE", stream, "*"),
        js_flow(stream, ALL),
    ]


def _reads(subjects: Subjects) -> list[str]:
    """Reading the log, the heartbeats, the attempt logs, the lease's holder, the dead letters."""
    found = [js_api("INFO"), js_api("STREAM", "NAMES"), js_api("STREAM", "LIST")]
    found.append(js_api("STREAM", "INFO", "*"))
    for stream in (subjects.events_stream, subjects.heartbeat_stream):
        found += _stream_reads(stream)
    found += _stream_reads(subjects.log_stream)
    lease = subjects.lease_stream  # who leads, for the exporter
    found += [js_api("STREAM", "MSG", "GET", lease), *_stream_reads(lease)[:2]]
    found.append(js_api("STREAM", "MSG", "GET", subjects.dead_letter_stream))  # dead letters
    return found


def _log_writes(subjects: Subjects) -> list[str]:
    """Storing an attempt's log: nats-py's object store put (chunks, metadata, old chunks)."""
    stream = subjects.log_stream
    return [
        object_chunks(subjects.log_bucket),
        object_meta(subjects.log_bucket),
        js_api("STREAM", "INFO", stream),
        js_api("STREAM", "MSG", "GET", stream),
        js_api("STREAM", "PURGE", stream),
    ]


def _agent(subjects: Subjects, agent: str) -> User:
    name = agent_user(agent)
    work, events = subjects.work_stream, subjects.events_stream
    publish = [
        subjects.job_events_by(agent),
        subjects.agent_event(agent),
        subjects.heartbeat(agent),
        subjects.dead_letter(name),
        js_api("INFO"),
        js_api("STREAM", "INFO", events),
        js_api("STREAM", "INFO", work),
        js_api("DIRECT", "GET", events),
        js_api("DIRECT", "GET", events, ALL),
        js_api("CONSUMER", "INFO", work, name),
        js_api("CONSUMER", "CREATE", work, name, subjects.work(agent)),
        js_api("CONSUMER", "MSG", "NEXT", work, name),
        js_ack(work, name, ALL),
        # its assignments: its own consumer, filtered on its own token (the server checks the
        # filter in the subject against the one in the request)
        js_api("CONSUMER", "INFO", events, name),
        js_api("CONSUMER", "CREATE", events, name, subjects.assignments_to(agent)),
        js_api("CONSUMER", "MSG", "NEXT", events, name),
        js_ack(events, name, ALL),
        *_log_writes(subjects),
    ]
    return User(name=name, role=Role.AGENT, publish=tuple(publish), subscribe=(inbox(name),))


def _scheduler(subjects: Subjects) -> User:
    name = "scheduler"
    publish = (
        subjects.job_events_by(SCHEDULER_WRITER),
        subjects.all_assignments,
        subjects.all_agent_events,
        subjects.all_work,
        subjects.all_dead_letters,
        js_api(ALL),
        js_ack(ALL),
        js_flow(ALL),
        ALL_KV,
        ALL_OBJECTS,
    )
    subscribe = (inbox(name), subjects.all_heartbeats, subjects.submit_request)
    return User(
        name=name, role=Role.SCHEDULER, publish=publish, subscribe=subscribe, responses=True
    )


def _readers(subjects: Subjects) -> list[User]:
    reads = tuple(_reads(subjects))
    return [
        User(
            name="operator",
            role=Role.OPERATOR,
            publish=(subjects.all_commands, subjects.submit_request, subjects.all_api, *reads),
            subscribe=(inbox("operator"),),
        ),
        User(
            name="projector",
            role=Role.PROJECTOR,
            publish=(subjects.dead_letter("projector"), *reads),
            subscribe=(inbox("projector"), subjects.all_api, SERVICE_DISCOVERY),
            responses=True,
        ),
        User(name="exporter", role=Role.EXPORTER, publish=reads, subscribe=(inbox("exporter"),)),
    ]


def users(subjects: Subjects, agents: Sequence[str]) -> list[User]:
    """Every user of a farm with these agents."""
    for agent in agents:
        subjects.work(agent)  # refuses an id that is not one subject token
        if agent == SCHEDULER_WRITER:
            raise InvalidSpec("agents", f"{agent!r} is the scheduler's writer name; rename it")
    if len(set(agents)) != len(agents):
        raise InvalidSpec("agents", "an agent is listed twice")
    readers = _readers(subjects)
    return [readers[0], _scheduler(subjects), *readers[1:]] + [
        _agent(subjects, agent) for agent in agents
    ]


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
