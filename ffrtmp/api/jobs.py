"""``/api/v1/jobs``: submit, list, read, follow and steer jobs.

Ids in paths are whole ids (a program has them), not the CLI's prefixes. A command answers
with the scheduler's decision (``ffrtmp.client.decision.Decided``); a refusal is 409 with its
reason, and no answer within the wait is 202: the command is stored and will be decided.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from events.commands import CancelJob, PauseJob, RespondToJob, ResumeJob, RetryJob, SubmitJob
from events.enums import JobStatus, Priority, Queue
from events.errors import InvalidSpec
from events.ids import check_id
from events.job import JobState, initial
from events.spec import JobSpec, validate
from ffrtmp.api.auth import Role
from ffrtmp.api.errors import NotFound, Refused
from ffrtmp.api.state import caller_of, conn_of
from ffrtmp.api.stream import follow
from ffrtmp.client.conn import Conn, command_id
from ffrtmp.client.decision import DECISION_WAIT_S, Decided, send_and_decide, send_and_report
from ffrtmp.client.joblist import JobFilter, Listing, list_jobs
from ffrtmp.client.jobs import HistoryEntry, JobLog, StatusJson, job_history, job_log, job_status
from ffrtmp.client.read import load_job
from ffrtmp.client.times import parse_time

MAX_LIMIT: Final = 1000
SSE: Final = "text/event-stream"


class Submission(JobSpec, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A job spec as ``jobs submit --spec`` takes it, with an optional id of your choosing.

    A resent id is a no-op: the job that has it is returned as it is (200).
    """

    id: str | None = None


class Submitted(msgspec.Struct, frozen=True, kw_only=True):
    """The job as the log now says, and the scheduler's decision (None: it existed already)."""

    job: JobState
    decision: Decided | None


class Answer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A note kept with an approval or a denial."""

    answer: str = ""


class PromptResponse(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The answer to a job's prompt; ``approve`` false cancels the job."""

    answer: str
    approve: bool = True


class Prompt(msgspec.Struct, frozen=True, kw_only=True):
    """What a job waiting for a person asks."""

    job: str
    status: str
    waiting: bool
    prompt: str


def _spec_of(data: Submission) -> JobSpec:
    fields = {name: getattr(data, name) for name in JobSpec.__struct_fields__}
    return validate(JobSpec(**fields))


async def _existing(conn: Conn, job: str) -> JobState:
    """The job with this whole id; 404 when the log has none."""
    state, events = await load_job(conn, check_id(job))
    if not events:
        raise NotFound("job", job)
    return state


def _decided(decided: Decided) -> Response[Decided]:
    if decided.refused:
        raise Refused(f"job {decided.job}: {decided.message}")
    return Response(decided, status_code=200 if decided.decided else 202)


class JobsController(Controller):
    """Jobs: every route reads the log or sends a command to it."""

    path = "/api/v1/jobs"
    tags = ["jobs"]  # noqa: RUF012 -- Litestar's class attribute

    @post("/", opt={"role": Role.OPERATOR}, status_code=201)
    async def submit(
        self, request: Request[Any, Any, Any], data: Submission
    ) -> Response[Submitted]:
        """Submit a job: 201 with the job and the scheduler's decision, 422 naming a wrong field."""
        conn, caller = conn_of(request), caller_of(request)
        spec = _spec_of(data)
        job = check_id(data.id) if data.id is not None else command_id()
        if data.id is not None:
            existing, events = await load_job(conn, job)
            if events and existing.spec is not None:
                return Response(Submitted(job=existing, decision=None), status_code=200)
        command = SubmitJob(id=command_id(), job=job, at=time.time(), by=caller.name, spec=spec)
        decided, state = await send_and_decide(conn, command, DECISION_WAIT_S)
        if decided.refused and data.id is not None:  # a race of two submits with one id
            existing, _ = await load_job(conn, job)
            if existing.spec is not None:
                return Response(Submitted(job=existing, decision=None), status_code=200)
        _decided(decided)
        if state is None:  # stored, not yet decided: the job has no event yet
            return Response(Submitted(job=initial(job), decision=decided), status_code=202)
        return Response(Submitted(job=state, decision=decided), status_code=201)

    @get("/", opt={"role": Role.VIEWER})
    async def listing(
        self,
        request: Request[Any, Any, Any],
        status: Annotated[
            list[JobStatus] | None, Parameter(description="Repeat for several.")
        ] = None,
        queue: Queue | None = None,
        priority: Priority | None = None,
        agent: Annotated[str | None, Parameter(description="A prefix of the agent id.")] = None,
        since: Annotated[str | None, Parameter(description="10m, 2h, 1d or ISO 8601.")] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_LIMIT)] = 50,
        offset: Annotated[int, Parameter(ge=0)] = 0,
    ) -> Listing:
        """Jobs, newest first, with the filters of ``ffrtmp jobs list``, a page at a time."""
        wanted = JobFilter(
            states=frozenset(str(s) for s in status or ()),
            queue=queue,
            priority=priority,
            agent=agent,
            since=None if since is None else parse_time(since, time.time(), "since"),
            limit=limit,
            offset=offset,
        )
        return await list_jobs(conn_of(request), wanted, local=False)

    @get("/{job:str}", opt={"role": Role.VIEWER})
    async def status(self, request: Request[Any, Any, Any], job: str) -> StatusJson:
        """One job: the same document as ``ffrtmp jobs status -o json``."""
        conn = conn_of(request)
        await _existing(conn, job)
        return await job_status(conn, job)

    @get(
        "/{job:str}/events",
        opt={"role": Role.VIEWER},
        responses={
            200: ResponseSpec(
                data_container=list[HistoryEntry],
                description="The history; as text/event-stream when asked: history, status, end.",
            )
        },
    )
    async def events(self, request: Request[Any, Any, Any], job: str) -> Response[Any]:
        """The job's history; with ``Accept: text/event-stream``, followed live to its end."""
        conn = conn_of(request)
        await _existing(conn, job)
        if SSE in request.headers.get("accept", ""):
            return ServerSentEvent(_messages(follow(conn, job)))
        return Response(await job_history(conn, job))

    @get("/{job:str}/logs", opt={"role": Role.VIEWER})
    async def logs(
        self,
        request: Request[Any, Any, Any],
        job: str,
        attempt: Annotated[int | None, Parameter(ge=1)] = None,
    ) -> JobLog:
        """FFmpeg's output for one attempt (the latest by default)."""
        conn = conn_of(request)
        await _existing(conn, job)
        return await job_log(conn, job, attempt)

    @get("/{job:str}/prompt", opt={"role": Role.VIEWER})
    async def prompt(self, request: Request[Any, Any, Any], job: str) -> Prompt:
        """What the job asks while it waits for a person (approval, or a question)."""
        state = await _existing(conn_of(request), job)
        waiting = state.status is JobStatus.PENDING
        return Prompt(job=job, status=str(state.status), waiting=waiting, prompt=state.prompt)

    @post("/{job:str}/response", opt={"role": Role.OPERATOR}, status_code=200)
    async def response(
        self, request: Request[Any, Any, Any], job: str, data: PromptResponse
    ) -> Response[Decided]:
        """Answer the job's prompt: it runs, or (``approve`` false) it is canceled."""
        return await _respond(request, job, approve=data.approve, answer=data.answer)

    @post("/{job:str}/approve", opt={"role": Role.OPERATOR}, status_code=200)
    async def approve(
        self, request: Request[Any, Any, Any], job: str, data: Answer | None = None
    ) -> Response[Decided]:
        """Approve a job that waits for approval: it queues."""
        return await _respond(request, job, approve=True, answer=data.answer if data else "")

    @post("/{job:str}/deny", opt={"role": Role.OPERATOR}, status_code=200)
    async def deny(
        self, request: Request[Any, Any, Any], job: str, data: Answer | None = None
    ) -> Response[Decided]:
        """Deny a job that waits for approval: it is canceled."""
        return await _respond(request, job, approve=False, answer=data.answer if data else "")

    @post("/{job:str}/{verb:str}", opt={"role": Role.OPERATOR}, status_code=200)
    async def steer(
        self, request: Request[Any, Any, Any], job: str, verb: str
    ) -> Response[Decided]:
        """``cancel``, ``pause``, ``resume`` or ``retry`` the job."""
        kind = _STEERS.get(verb)
        if kind is None:
            raise InvalidSpec("verb", f"{verb!r} is not one of {', '.join(_STEERS)}")
        conn, caller = conn_of(request), caller_of(request)
        await _existing(conn, job)
        command = kind(id=command_id(), job=job, at=time.time(), by=caller.name)
        return _decided(await send_and_report(conn, command, DECISION_WAIT_S))


_STEERS: Final[dict[str, type[CancelJob | PauseJob | ResumeJob | RetryJob]]] = {
    "cancel": CancelJob,
    "pause": PauseJob,
    "resume": ResumeJob,
    "retry": RetryJob,
}


async def _respond(
    request: Request[Any, Any, Any], job: str, *, approve: bool, answer: str
) -> Response[Decided]:
    conn, caller = conn_of(request), caller_of(request)
    await _existing(conn, job)
    command = RespondToJob(
        id=command_id(), job=job, at=time.time(), by=caller.name, approve=approve, answer=answer
    )
    return _decided(await send_and_report(conn, command, DECISION_WAIT_S))


async def _messages(
    items: AsyncIterator[tuple[str, int, msgspec.Struct]],
) -> AsyncIterator[ServerSentEventMessage]:
    async for event, seq, body in items:
        data = msgspec.json.encode(body).decode()
        yield ServerSentEventMessage(data=data, event=event, id=str(seq) if seq else None)
