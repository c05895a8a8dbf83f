"""Hypothesis strategies for ffrtmp's messages, in one place."""

from __future__ import annotations

from typing import Any, get_args

import msgspec
from hypothesis import strategies as st

from events.agent_events import AgentEvent
from events.codec import CURRENT_VERSIONS
from events.commands import OperatorCommand
from events.enums import Priority, QualityMetric, Queue
from events.job_events import JobEvent
from events.spec import JobSpec
from events.work import Heartbeat, WorkMessage

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
int64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ident = st.text(alphabet="abcdefghjkmnpqrstvwxyz0123456789", min_size=1, max_size=12)
times = st.floats(min_value=1.7e9, max_value=2.0e9, allow_nan=False)

specs = st.builds(
    JobSpec,
    scenario=st.sampled_from(["1080p-h264", "720p-hevc", "4K60-h264", "480p-av1"]),
    duration_s=st.floats(min_value=0.5, max_value=600),
    queue=st.sampled_from(list(Queue)),
    priority=st.sampled_from(list(Priority)),
    max_retries=st.integers(min_value=0, max_value=5),
    approval_required=st.booleans(),
    quality_metrics=st.lists(st.sampled_from(list(QualityMetric)), unique=True).map(tuple),
    labels=st.dictionaries(st.sampled_from(["team", "tier", "site"]), ident, max_size=3),
)


def _with_types() -> None:
    """Keep generated numbers inside what JSON and msgspec round-trip exactly."""
    st.register_type_strategy(float, finite)
    st.register_type_strategy(int, int64)
    st.register_type_strategy(JobSpec, specs)


_with_types()


def _built(cls: type[Any]) -> st.SearchStrategy[Any]:
    version = CURRENT_VERSIONS.get(cls.__name__, 1)
    return st.builds(cls, v=st.just(version))


events: st.SearchStrategy[Any] = st.one_of(
    [_built(cls) for cls in (*get_args(JobEvent), *get_args(AgentEvent))]
)
agent_events: st.SearchStrategy[Any] = st.one_of([_built(cls) for cls in get_args(AgentEvent)])
commands: st.SearchStrategy[Any] = st.one_of([_built(cls) for cls in get_args(OperatorCommand)])
work_messages: st.SearchStrategy[Any] = st.one_of([_built(cls) for cls in get_args(WorkMessage)])
heartbeats: st.SearchStrategy[Heartbeat] = _built(Heartbeat)


def as_json(message: msgspec.Struct) -> bytes:
    """The bytes a message has on the wire."""
    return msgspec.json.encode(message)
