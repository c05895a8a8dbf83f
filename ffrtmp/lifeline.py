"""Children that end with the process that started them, even when it is killed with ``-9``.

On Linux a child may ask the kernel for a signal when its parent dies (``PR_SET_PDEATHSIG``).
``ffrtmp up`` and the embedded nats-server both use it, so a killed ``up`` or ``server`` leaves
no farm and no server behind. Elsewhere there is nothing to ask for and children outlive their
parent as usual. The signal fires when the *thread* that started the child ends, so children
must be started from a thread that lives as long as the process (the main one, as here).

``end`` is the other half of a child's life: SIGTERM, a grace period, then SIGKILL.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any, Final

from agent.child import signal_at_parent_death


def _term_with_parent() -> None:
    """In the child, before exec: SIGTERM me when the process that started me dies."""
    signal_at_parent_death(signal.SIGTERM)


PREEXEC: Final[Callable[[], None] | None] = _term_with_parent if sys.platform == "linux" else None
"""``preexec_fn`` for ``subprocess.Popen``: async-signal-safe, one prctl call."""


def end(proc: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM ``proc``, wait up to ``grace_s`` for a clean exit, else SIGKILL; reaped either way.

    A process that has already exited is only reaped (``Popen`` signals no exited process).
    """
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
