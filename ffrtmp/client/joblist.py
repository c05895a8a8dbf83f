"""``ffrtmp jobs list``: ask a projector, or fold the log here when none answers.

A farm's log grows by millions of events, and folding it all for one listing takes as long as
a rebuild (tens of seconds per million events). A projector has the ``jobs`` table ready and
answers in milliseconds, behind the log by its lag (under a second at 2,000 events/s). When no
projector answers on the prefix, or with ``--local``, the jobs' events (no agent's) are folded
here with the scheduler's own fold, so the command needs nothing but NATS. Both give the same
rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import msgspec

from events.enums import Priority, Queue
from events.errors import FfrtmpError
from events.job import JobState
from ffrtmp.client.conn import Conn
from ffrtmp.client.read import fold_jobs
from ffrtmp.client.render import JobRow, job_row

if TYPE_CHECKING:  # importing projections loads DuckDB and pyarrow: only a listing needs them
    from projections.query import QueryResult
    from projections.service import SqlReply

_COLUMNS = (
    "job, status, scenario, queue, priority, coalesce(agent, ''), attempts, retries, "
    "round(percent, 1), coalesce(epoch(submitted_at), 0), coalesce(epoch(finished_at), 0), "
    "coalesce(failure_reason, ''), coalesce(failure_message, '')"
)


_TOTAL: Final = "SELECT count(*) FROM jobs WHERE scenario IS NOT NULL"
"""Jobs in all: those submitted (an id that only ever had refusals is no job)."""


class JobFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Which jobs to list, newest first, after skipping ``offset``; ``limit`` 0 is all of them."""

    states: frozenset[str] = frozenset()
    queue: Queue | None = None
    priority: Priority | None = None
    agent: str | None = None  # a prefix of the agent's id
    since: float | None = None  # submitted at or after (Unix seconds)
    limit: int = 50
    offset: int = 0

    def matches(self, state: JobState) -> bool:
        """Whether a job folded here is listed."""
        spec = state.spec
        if spec is None:
            return False  # only refusals were recorded under this id
        return (
            (not self.states or state.status in self.states)
            and (self.queue is None or spec.queue is self.queue)
            and (self.priority is None or spec.priority is self.priority)
            and (self.agent is None or state.agent.startswith(self.agent))
            and (self.since is None or state.submitted_at >= self.since)
        )

    def where(self) -> tuple[str, list[object]]:
        """The selection as an SQL condition over the projector's ``jobs``, with its parameters."""
        where, params = ["scenario IS NOT NULL"], list[object]()
        if self.states:
            where.append(f"status IN ({', '.join('?' * len(self.states))})")
            params += sorted(self.states)
        if self.queue is not None:
            where.append("queue = ?")
            params.append(str(self.queue))
        if self.priority is not None:
            where.append("priority = ?")
            params.append(str(self.priority))
        if self.agent is not None:
            where.append("starts_with(agent, ?)")
            params.append(self.agent)
        if self.since is not None:
            where.append("epoch(submitted_at) >= ?")
            params.append(self.since)
        return " AND ".join(where), params

    def query(self) -> tuple[str, list[object]]:
        """The page as SQL, each row with how many jobs match and how many there are in all.

        ``count(*) OVER ()`` counts the matching rows before LIMIT and OFFSET cut the page.
        """
        where, params = self.where()
        limit = f" LIMIT {int(self.limit)}" if self.limit > 0 else ""
        if self.offset > 0:
            limit += f" OFFSET {int(self.offset)}"
        # Only our own fragments go into the text; every value is a ``?`` parameter.
        sql = (
            f"SELECT {_COLUMNS}, count(*) OVER () AS matching, ({_TOTAL}) AS total "  # noqa: S608
            f"FROM jobs WHERE {where} ORDER BY submitted_at DESC, job DESC{limit}"
        )
        return sql, params


class Listing(msgspec.Struct, frozen=True, kw_only=True):
    """A page of rows, how many jobs match the filter and the log holds, and from where."""

    rows: list[JobRow]
    matching: int  # jobs the filter selects, over every page
    total: int  # jobs in all
    source: str  # "projector at seq N" or "the log, folded here"
    truncated: bool = False


async def list_jobs(conn: Conn, wanted: JobFilter, *, local: bool) -> Listing:
    """Ask a projector unless ``local``; fold the log here when none answers."""
    from projections.service import NoProjector  # noqa: PLC0415 -- see the imports above

    if not local:
        try:
            return await _asked(conn, wanted)
        except NoProjector:
            pass
    return await _folded(conn, wanted)


async def _asked(conn: Conn, wanted: JobFilter) -> Listing:
    from projections.service import MAX_ROW_LIMIT, ask  # noqa: PLC0415 -- see the imports above

    sql, params = wanted.query()
    reply = await ask(conn.nc, conn.subjects, sql, params, limit=MAX_ROW_LIMIT)
    result = _result(reply)
    fields = JobRow.__struct_fields__
    rows = [msgspec.convert(dict(zip(fields, r[:-2], strict=True)), JobRow) for r in result.rows]
    if result.rows:
        matching, total = int(result.rows[0][-2]), int(result.rows[0][-1])
    else:  # an empty page (past the end, or nothing matches): the counts asked apart
        matching, total = await _counts(conn, wanted)
    return Listing(
        rows=rows,
        matching=matching,
        total=total,
        source=f"projector at seq {reply.checkpoint}",
        truncated=result.truncated,
    )


async def _counts(conn: Conn, wanted: JobFilter) -> tuple[int, int]:
    from projections.service import ask  # noqa: PLC0415 -- see the imports above

    where, params = wanted.where()
    sql = f"SELECT count(*) FILTER (WHERE {where}), ({_TOTAL}) FROM jobs"  # noqa: S608 -- ours
    row = _result(await ask(conn.nc, conn.subjects, sql, params)).rows[0]
    return int(row[0]), int(row[1])


def _result(reply: SqlReply) -> QueryResult:
    if reply.result is None:  # ``ask`` raises on refusals and failures: a projector's bug
        raise FfrtmpError(f"the projector answered without rows: {reply.error or reply.kind}")
    return reply.result


async def _folded(conn: Conn, wanted: JobFilter) -> Listing:
    jobs = await fold_jobs(conn)
    rows = [job_row(state) for state in jobs.values() if wanted.matches(state)]
    rows.sort(key=lambda r: (r.submitted_at, r.id), reverse=True)
    matching = len(rows)
    rows = rows[wanted.offset :]
    if wanted.limit > 0:
        rows = rows[: wanted.limit]
    total = sum(1 for state in jobs.values() if state.spec is not None)
    return Listing(rows=rows, matching=matching, total=total, source="the log, folded here")
