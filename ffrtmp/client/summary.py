"""The farm at a glance: jobs by status, what waits in each queue, the last hour's throughput.

Asked of a projector (one grouped query) when one answers, else folded from the log here, as
``jobs list`` does (the jobs' events only); nodes come from the agents' events only.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

import msgspec

from events.agent import AgentState
from events.enums import AgentStatus, JobStatus
from events.errors import FfrtmpError
from events.job import JobState
from ffrtmp.client.conn import Conn
from ffrtmp.client.read import fold_agents, fold_jobs

HOUR_S: Final = 3600.0
WAITING: Final = frozenset({JobStatus.QUEUED, JobStatus.RETRYING})
"""Statuses that count as waiting in a queue."""
_GROUPED: Final = """
    SELECT status, coalesce(queue, ''), count(*),
           count(*) FILTER (WHERE epoch(finished_at) >= ?)
    FROM jobs WHERE scenario IS NOT NULL GROUP BY ALL"""


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """What the console's overview shows; counts of jobs and nodes."""

    jobs_by_status: dict[str, int]
    queued_by_queue: dict[str, int]
    completed_last_hour: int
    failed_last_hour: int
    nodes_online: int
    nodes_total: int
    source: str


class _Count(msgspec.Struct, frozen=True):
    status: str
    queue: str
    jobs: int
    last_hour: int


def summarize(counts: list[_Count], agents: dict[str, AgentState], source: str) -> Summary:
    """The summary of grouped job counts and the agents."""
    by_status: Counter[str] = Counter()
    queued: Counter[str] = Counter()
    finished: Counter[str] = Counter()
    for count in counts:
        by_status[count.status] += count.jobs
        if count.status in WAITING:
            queued[count.queue] += count.jobs
        finished[count.status] += count.last_hour
    online = sum(1 for a in agents.values() if a.status is AgentStatus.ONLINE)
    return Summary(
        jobs_by_status=dict(sorted(by_status.items())),
        queued_by_queue=dict(sorted(queued.items())),
        completed_last_hour=finished[JobStatus.COMPLETED],
        failed_last_hour=finished[JobStatus.FAILED],
        nodes_online=online,
        nodes_total=len(agents),
        source=source,
    )


def _counted(jobs: list[JobState], since: float) -> list[_Count]:
    grouped: Counter[tuple[str, str]] = Counter()
    recent: Counter[tuple[str, str]] = Counter()
    for state in jobs:
        if state.spec is None:
            continue  # only refusals were recorded under this id
        key = (str(state.status), str(state.spec.queue))
        grouped[key] += 1
        recent[key] += state.finished_at >= since
    return [_Count(s, q, n, recent[(s, q)]) for (s, q), n in grouped.items()]


async def farm_summary(conn: Conn, now: float) -> Summary:
    """The farm now: a projector's counts when one answers, the log folded here otherwise."""
    from projections.service import NoProjector, ask  # noqa: PLC0415 -- DuckDB only on this path

    try:
        reply = await ask(conn.nc, conn.subjects, _GROUPED, [now - HOUR_S])
    except NoProjector:
        counts = _counted(list((await fold_jobs(conn)).values()), now - HOUR_S)
        return summarize(counts, await fold_agents(conn), "the log, folded here")
    if reply.result is None:
        raise FfrtmpError(f"the projector answered without rows: {reply.error or reply.kind}")
    counts = [_Count(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in reply.result.rows]
    return summarize(counts, await fold_agents(conn), f"projector at seq {reply.checkpoint}")
