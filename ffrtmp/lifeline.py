"""Children that end with the process that started them, even when it is killed with ``-9``.

On Linux a child may ask the kernel for a signal when its parent dies (``PR_SET_PDEATHSIG``).
``ffrtmp up`` and the embedded nats-server both use it, so a killed ``up`` or ``server`` leaves
no farm and no server behind. Elsewhere there is nothing to ask for and children outlive their
parent as usual. The signal fires when the *thread* that started the child ends, so children
must be started from a thread that lives as long as the process (the main one, as here).
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable
from typing import Final

_PR_SET_PDEATHSIG: Final = 1  # linux/prctl.h


def _term_with_parent() -> None:
    """In the child, before exec: SIGTERM me when the process that started me dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


PREEXEC: Final[Callable[[], None] | None] = _term_with_parent if sys.platform == "linux" else None
"""``preexec_fn`` for ``subprocess.Popen``: async-signal-safe, one prctl call."""
