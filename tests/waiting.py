"""Waiting in tests: poll a condition until it holds, fail naming it at a deadline.

The one pair of polling helpers every test waits with (never a sleep as synchronisation):
``wait_for`` in plain code and threads, ``wait_until`` on the event loop. The poll interval is
the caller's when a check is costly (an HTTP call, a log read); the condition is what is
waited for.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

POLL_S: Final = 0.02


def wait_for(
    check: Callable[[], bool],
    what: str,
    deadline_s: float,
    *,
    poll_s: float = POLL_S,
    alive: Sequence[subprocess.Popen[bytes]] = (),
    context: Callable[[], str] = str,
) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` past the deadline.

    Any process in ``alive`` that exits meanwhile fails the wait at once, naming it. A failure
    ends with what ``context`` says then (a log's tail, say).
    """
    end = time.monotonic() + deadline_s
    while not check():
        for proc in alive:
            assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}: {context()}"
        if time.monotonic() > end:
            msg = f"timed out after {deadline_s:g} s waiting for {what}: {context()}"
            raise AssertionError(msg)
        time.sleep(poll_s)


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, deadline_s: float, *, poll_s: float = POLL_S
) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` past the deadline."""
    end = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > end:
            msg = f"timed out after {deadline_s:g} s waiting for {what}"
            raise AssertionError(msg)
        await asyncio.sleep(poll_s)
