"""Ending asyncio tasks for sure.

Python 3.11's ``asyncio.wait_for`` loses a cancel that races a result (fixed in 3.12), and
nats-py waits that way inside ``fetch`` and ``next_msg``: a task cancelled once at the wrong
moment carries on, and whoever awaits it waits forever. ``cancel_all`` cancels again until the
tasks have ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

_log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def background(
    work: Coroutine[Any, Any, None], name: str, every_s: float = 1.0
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``work`` as a task while the block runs; end it for sure on the way out."""
    task = asyncio.create_task(work, name=name)
    try:
        yield task
    finally:
        await cancel_all([task], every_s)


async def cancel_all(tasks: list[asyncio.Task[None]], every_s: float) -> None:
    """Cancel the tasks and wait for them, cancelling again every ``every_s`` until all end."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        done, pending = await asyncio.wait(pending, timeout=every_s)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                _log.error("a task had failed", exc_info=task.exception())
