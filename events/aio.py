"""Ending asyncio tasks for sure, though Python 3.11 and nats-py lose cancels.

A cancel can be lost three ways, and a task that loses one runs on while whoever awaits it (a
TaskGroup, a shutdown) waits forever:

- Python 3.11's ``asyncio.wait_for`` returns the result when a cancel races it (fixed in 3.12).
  Our own waits use ``asyncio.timeout`` instead; nats-py waits that way in ``fetch``,
  ``next_msg`` and ``request``.
- nats-py turns a cancel into its own error: ``publish_async`` waiting for a free slot raises
  ``TooManyStalledMsgsError``. A loop that rides out NATS errors then rides out its cancel;
  such handlers call ``raise_if_cancelling`` first.
- nats-py's ``flush`` swallows a cancel outright; ``cancel_all`` cancels again until done.

A process stopped by a signal loses its cancel the same ways, and then runs on after SIGTERM
(a scheduler whose server died with ``up`` kept reconnecting for ever); ``cancel_on_signals``
cancels its main task again until it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Coroutine
from typing import Any

_log = logging.getLogger(__name__)


def raise_if_cancelling() -> None:
    """Re-raise the cancel that an error being handled may stand for.

    The task keeps count of cancel requests (``Task.cancelling``) whatever became of the
    ``CancelledError``, so a handler that would retry can tell it was asked to stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


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


def cancel_on_signals(
    task: asyncio.Task[Any],
    every_s: float = 1.0,
    signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM),
) -> None:
    """On SIGINT or SIGTERM cancel ``task``, then again every ``every_s`` until it has ended.

    The first cancel lets the task stop cleanly (a scheduler releases its lease); the repeats
    only matter when a cancel was lost, and keep the process from outliving its stop.
    """
    loop = asyncio.get_running_loop()

    def cancel() -> None:
        if not task.done():
            task.cancel()
            loop.call_later(every_s, cancel)

    for sig in signals:
        loop.add_signal_handler(sig, cancel)
