"""``ffrtmp jobs``: submit, list, watch, steer and explain jobs.

Every change is an operator command on the commands stream (``<prefix>.cmd.<verb>``, deduped
by its id); the command then waits briefly for the scheduler's decision (the first event whose
``cause`` is the command's id) and says what happened, or that no scheduler has answered yet.
Reads fold the log here with the same pure fold the scheduler uses. Any unique prefix of a job
id names it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from events.commands import (
    CancelJob,
    PauseJob,
    RespondToJob,
    ResumeJob,
    RetryJob,
    SubmitJob,
)
from events.enums import Engine, Priority, QualityMetric, Queue
from events.errors import InvalidSpec
from events.ids import check_id
from events.spec import JobSpec, parse_spec, validate
from ffrtmp.cli import jobviews
from ffrtmp.cli.common import (
    NatsOpt,
    Output,
    OutputOpt,
    PrefixOpt,
    Target,
    echo_json,
    explained,
    fail,
    operator,
    run,
    target,
)
from ffrtmp.client.conn import command_id, connect
from ffrtmp.client.decision import DECISION_WAIT_S, Decided, send_and_report
from ffrtmp.client.read import resolve_job

app = typer.Typer(help="Submit, list, watch, steer and explain jobs.", no_args_is_help=True)

IdArg = jobviews.IdArg  # one definition of the job-id argument, shared with the views
WaitOpt = Annotated[
    float,
    typer.Option("--decision-wait-s", help="How long to wait for the scheduler's answer."),
]


def _print_decided(where: Target, decided: Decided) -> None:
    if where.json:
        echo_json(decided)
    elif decided.refused:
        pass  # the error line below says it
    elif decided.decided:
        typer.echo(f"job {decided.job}: {decided.status}" + _tail(decided.message))
    else:
        typer.echo(f"job {decided.job}: {decided.message}")
    if decided.refused:
        raise fail(f"job {decided.job}: {decided.message}")


def _tail(message: str) -> str:
    return f" ({message})" if message else ""


def _operator_command(
    kind: type[CancelJob | PauseJob | ResumeJob | RetryJob],
    job_id: str,
    nats: str | None,
    prefix: str | None,
    output: Output | None,
    wait_s: float,
) -> None:
    where = target(nats, prefix, output)

    async def go() -> Decided:
        async with connect(where) as conn:
            job = await resolve_job(conn, job_id)
            command = kind(id=command_id(), job=job, at=time.time(), by=operator())
            return await send_and_report(conn, command, wait_s)

    _print_decided(where, run(go()))


@app.command()
def cancel(
    job_id: IdArg,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Cancel a job; a running one is stopped by its agent.

    Example: ffrtmp jobs cancel 01k2
    """
    _operator_command(CancelJob, job_id, nats, prefix, output, wait_s)


@app.command()
def pause(
    job_id: IdArg,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Pause a job: hold it in the queue, or suspend its FFmpeg (SIGSTOP).

    Example: ffrtmp jobs pause 01k2
    """
    _operator_command(PauseJob, job_id, nats, prefix, output, wait_s)


@app.command()
def resume(
    job_id: IdArg,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Resume a paused job.

    Example: ffrtmp jobs resume 01k2
    """
    _operator_command(ResumeJob, job_id, nats, prefix, output, wait_s)


@app.command()
def retry(
    job_id: IdArg,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Run a failed or canceled job again, as a new attempt with a fresh retry budget.

    Example: ffrtmp jobs retry 01k2
    """
    _operator_command(RetryJob, job_id, nats, prefix, output, wait_s)


def _respond(
    job_id: str,
    *,
    yes: bool,
    answer: str,
    nats: str | None,
    prefix: str | None,
    output: Output | None,
    wait_s: float,
) -> None:
    where = target(nats, prefix, output)

    async def go() -> Decided:
        async with connect(where) as conn:
            job = await resolve_job(conn, job_id)
            command = RespondToJob(
                id=command_id(), job=job, at=time.time(), by=operator(), approve=yes, answer=answer
            )
            return await send_and_report(conn, command, wait_s)

    _print_decided(where, run(go()))


@app.command()
def approve(
    job_id: IdArg,
    answer: Annotated[str, typer.Option(help="A note kept with the approval.")] = "",
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Approve a job that waits for approval: it queues.

    Example: ffrtmp jobs approve 01k2
    """
    _respond(
        job_id, yes=True, answer=answer, nats=nats, prefix=prefix, output=output, wait_s=wait_s
    )


@app.command()
def deny(
    job_id: IdArg,
    answer: Annotated[str, typer.Option(help="Why, kept with the denial.")] = "",
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Deny a job that waits for approval: it is canceled.

    Example: ffrtmp jobs deny 01k2 --answer "not during the live event"
    """
    _respond(
        job_id, yes=False, answer=answer, nats=nats, prefix=prefix, output=output, wait_s=wait_s
    )


@app.command()
def respond(
    job_id: IdArg,
    answer: Annotated[str, typer.Option(help="Your answer to the job's prompt.")],
    deny: Annotated[bool, typer.Option("--deny", help="The answer is no: cancel it.")] = False,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Answer a job's prompt; the job runs unless --deny.

    Example: ffrtmp jobs respond 01k2 --answer "yes, use the backup ingest"
    """
    _respond(
        job_id, yes=not deny, answer=answer, nats=nats, prefix=prefix, output=output, wait_s=wait_s
    )


# --- submit --------------------------------------------------------------------------------


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidSpec("labels", f"{pair!r} is not KEY=VALUE")
        labels[key] = value
    return labels


@app.command()
def submit(
    scenario: Annotated[
        str, typer.Option(help="Scenario name (`ffrtmp scenarios` lists them).")
    ] = "1080p-h264",
    engine: Annotated[
        Engine, typer.Option(help="Media engine; auto: FFmpeg where the agent can, else GStreamer.")
    ] = Engine.FFMPEG,
    input_: Annotated[
        str, typer.Option("--input", help="Test pattern (testsrc2), file path or URL.")
    ] = "testsrc2",
    dest: Annotated[
        str, typer.Option(help="Where the encode goes: none, a file path, rtmp://, srt://.")
    ] = "none",
    duration: Annotated[
        float | None,
        typer.Option(
            help="Seconds of media to encode [default: a file or URL whole, a test pattern "
            "10 s, or until canceled when sent live]."
        ),
    ] = None,
    queue: Annotated[Queue, typer.Option(help="live > default > batch.")] = Queue.DEFAULT,
    priority: Annotated[Priority, typer.Option(help="Priority in its queue.")] = Priority.MEDIUM,
    max_retries: Annotated[int, typer.Option(help="Retries of retryable failures.")] = 3,
    timeout_s: Annotated[
        float | None, typer.Option(help="Time budget per attempt [default: derived].")
    ] = None,
    approval: Annotated[
        bool, typer.Option("--approval", help="Wait for an operator's approval first.")
    ] = False,
    prompt: Annotated[str, typer.Option(help="The question the approver sees.")] = "",
    metric: Annotated[
        list[QualityMetric] | None, typer.Option(help="Quality metric to compute (repeat).")
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="KEY=VALUE label (repeat).")] = None,
    preset: Annotated[str | None, typer.Option(help="Encoder preset.")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace --dest if it exists (else refused).")
    ] = False,
    spec_file: Annotated[
        Path | None, typer.Option("--spec", help="A JSON job spec; replaces the options above.")
    ] = None,
    jobs_file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help='Many jobs: one JSON spec a line (an optional "id" beside its fields), '
            "- for stdin; replaces the options above.",
        ),
    ] = None,
    job_id: Annotated[
        str | None, typer.Option("--id", help="Choose the job id (a retried submit is a no-op).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job to its end.")] = False,
    wait_timeout_s: Annotated[
        float | None, typer.Option(help="With --wait: give up (exit 5) after this long.")
    ] = None,
    nats: NatsOpt = None,
    prefix: PrefixOpt = None,
    output: OutputOpt = None,
    decision_wait_s: WaitOpt = DECISION_WAIT_S,
) -> None:
    """Submit a job; with --wait, follow it to the end (exit 0 completed, 3 failed, 4 canceled).

    Example: ffrtmp jobs submit --scenario 4K60-h264 --queue live --priority high --duration 30

    Many at once: ffrtmp jobs submit --file jobs.jsonl
    """
    where = target(nats, prefix, output)
    if jobs_file is not None:
        from ffrtmp.cli import bulk  # noqa: PLC0415 -- its progress bar costs a single submit 30 ms

        bulk.submit_command(where, jobs_file, decision_wait_s)
        return
    with explained():
        if spec_file is not None:
            spec = parse_spec(spec_file.read_bytes())
        else:
            spec = validate(
                JobSpec(
                    scenario=scenario,
                    engine=engine,
                    input=input_,
                    output=dest,
                    duration_s=duration,
                    queue=queue,
                    priority=priority,
                    max_retries=max_retries,
                    timeout_s=timeout_s,
                    approval_required=approval,
                    approval_prompt=prompt,
                    quality_metrics=tuple(metric or ()),
                    labels=_labels(label or []),
                    preset=preset,
                    overwrite=overwrite,
                )
            )
        job = check_id(job_id) if job_id else command_id()
    command = SubmitJob(id=command_id(), job=job, at=time.time(), by=operator(), spec=spec)

    async def go() -> Decided:
        async with connect(where) as conn:
            return await send_and_report(conn, command, decision_wait_s)

    decided = run(go())
    if not wait or decided.refused:
        _print_decided(where, decided)
        return
    if where.json:
        echo_json(decided)  # the submit's document, then one line per change of the job
    else:
        typer.echo(f"job {job} submitted ({spec.scenario}, {spec.queue}/{spec.priority})")
    raise typer.Exit(jobviews.watch(where, job, wait_timeout_s))


# --- reading -------------------------------------------------------------------------------

app.command(name="list")(jobviews.list_jobs)
app.command(name="status")(jobviews.status)
app.command(name="history")(jobviews.history)
app.command(name="logs")(jobviews.logs)
