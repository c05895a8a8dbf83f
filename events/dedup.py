"""Every ``Nats-Msg-Id`` format in one place: what each dedup id is for, and who writes it.

JetStream dedups per stream, whatever the subject: two writers of the events stream that build
the same id for different events lose the second one silently (its append is acknowledged with
the first one's sequence). So the formats are kept apart by design:

- The scheduler's own decisions (``scheduler_job_event``, ``scheduler_agent_event``) start with
  ``sched/``. ``/`` is in no id alphabet (job and agent ids: ``events.ids.check_id``; command
  ids: ``events.limits.check_command_id``; event type names; numbers), so no agent's id and no
  command's id can ever equal one of them.
- An agent's ids (``agent_job_event``, ``agent_lifecycle``) start with its job or agent id and a
  ``:`` and name the event's type.
- Events caused by an operator's command (``command_event``, ``malformed_command``,
  ``conflicting_command``) are the command id and one more field. A generated or caller-chosen
  id without ``:`` leaves them one ``:``; an agent's id always has at least two.

Which strings stayed as they were, and why a changed one is safe: dedup spans the stream's
window (``events.streams``, 2 minutes), so during a rolling upgrade an old and a new writer may
both append within it. Formats another process may repeat for the same cause kept their exact
strings: an agent's (the attempt's process retries its own reports), a command's (a command
redelivered after a crash is decided again by the next leader, perhaps of the next version), and
the work stream's dispatch and control ids (a takeover re-sends what the log says is
outstanding). Only the scheduler's own decisions changed (they were ``<job>:<attempt>:<type>:
<detail>``, differing from an agent's by an accidental trailing ``:``): a new leader never
repeats an old leader's decision by dedup alone, because it decides against the log it read and
appends expecting the job's (or agent's) last sequence, so an old leader's append that landed is
either in what it read (nothing to decide again) or a conflict that makes it read again.
"""

from __future__ import annotations

from typing import Final

from events.subjects import SCHEDULER_WRITER

SCHEDULER_MARK: Final = f"{SCHEDULER_WRITER}/"
"""Starts every id of the scheduler's own decisions; ``/`` is in no id alphabet."""


# --- the events stream: the scheduler ---------------------------------------------------------


def command_event(command_id: str, index: int) -> str:
    """The ``index``-th event an operator's command caused: ``<command>:<index>``."""
    return f"{command_id}:{index}"


def malformed_command(command_id: str) -> str:
    """The refusal recorded for a command that could not be decoded: ``<command>:malformed``."""
    return f"{command_id}:malformed"


def conflicting_command(command_id: str) -> str:
    """The refusal recorded for a valid command that kept conflicting: ``<command>:conflicting``."""
    return f"{command_id}:conflicting"


def scheduler_job_event(job: str, attempt: int, event_type: str, detail: str = "") -> str:
    """A job event the scheduler decided on its own (assign, time out, requeue, agent gone).

    ``detail`` tells two decisions of one attempt and type apart (an assignment's agent).
    """
    return f"{SCHEDULER_MARK}{job}:{attempt}:{event_type}:{detail}"


def scheduler_agent_event(agent: str, what: str, mark: float | None) -> str:
    """An agent event the scheduler decided (``lost``, ``returned``, ``quarantined``).

    ``mark`` makes it one event per occasion: the agent's last sequence the decision was made
    against, or for ``lost`` the time the agent was last heard from.
    """
    return f"{SCHEDULER_MARK}{agent}:{what}:{mark}"


# --- the events stream: an agent --------------------------------------------------------------


def agent_job_event(job: str, attempt: int, event_type: str, detail: str = "") -> str:
    """An agent's report on its attempt: ``<job>:<attempt>:<type>[:<detail>]``.

    A milestone's detail is its percent; a control outcome's is the cause it answers.
    """
    base = f"{job}:{attempt}:{event_type}"
    return f"{base}:{detail}" if detail else base


def agent_lifecycle(agent: str, event_type: str, registration: str) -> str:
    """An agent's own lifecycle event, once per registration: ``<agent>:<type>:<registration>``."""
    return f"{agent}:{event_type}:{registration}"


# --- the work stream (the scheduler to one agent) ---------------------------------------------


def dispatch(job: str, attempt: int) -> str:
    """One attempt's dispatch: a takeover re-sending it is a no-op."""
    return f"{job}:{attempt}"


def control(job: str, attempt: int, action: str, cause: str) -> str:
    """A control request (pause, resume, cancel) of one attempt, per cause."""
    return f"{job}:{attempt}:{action}:{cause}"


def stop_timed_out(job: str, attempt: int) -> str:
    """The cancel sent to an agent whose attempt ran out of time."""
    return f"{job}:{attempt}:cancel:timed-out"


# --- the commands stream ----------------------------------------------------------------------


def command(command_id: str) -> str:
    """An operator's command: its id, so a re-sent command is stored once."""
    return command_id
