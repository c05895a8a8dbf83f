"""An assignment read from the log, as the dispatch the agent runs.

The scheduler appends ``JobAssigned`` on ``<prefix>.evt.job.<job>.sched.<agent>``, carrying
what the attempt needs (spec, budget, GPU, retries), and each agent reads the ones naming it
through its durable consumer ``agent-<id>`` on the events stream, filtered on
``<prefix>.evt.job.*.sched.<agent>``. The assignment is then the dispatch: nothing is written
twice and nothing is re-sent after a crash (the consumer resumes where its acks stopped).

The agent trusts it as it trusted a dispatch: only the scheduler may append on ``…sched.*``
subjects (the generated NATS users let no agent write there), the subject names this agent, and
``events.admit`` binds the event's ``agent`` to that token. Its stream sequence is ``after_seq``:
the first report expects it, so anything that landed on the job since (a cancel, a timeout)
makes that append conflict and the writer re-read the job. An I/O-free edge of the agent.
"""

from __future__ import annotations

from events.admit import read_event
from events.errors import MalformedMessage
from events.job_events import JobAssigned
from events.work import Dispatch


def dispatch_of(agent: str, subject: str, data: bytes, seq: int) -> Dispatch:
    """The dispatch an assignment to ``agent`` stored at ``seq`` on ``subject`` stands for.

    Raises ``MalformedMessage`` for anything else: a message that does not decode or may not
    be stored there, another event, another agent's assignment, or one without a spec.
    """
    event = read_event(subject, data)
    if not isinstance(event, JobAssigned):
        raise MalformedMessage(f"{subject} at {seq} holds no assignment ({event!r:.120})", data)
    if event.agent != agent or event.spec is None:
        why = "names another agent" if event.agent != agent else "carries no spec"
        raise MalformedMessage(f"the assignment at {seq} {why}", data)
    return Dispatch(
        job=event.job,
        attempt=event.attempt,
        spec=event.spec,
        budget_s=event.budget_s,
        retries=event.retries,
        after_seq=seq,
        at=event.at,
        gpu=event.gpu,
        agent=agent,
    )
