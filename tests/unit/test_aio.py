"""Cancels that are lost on the way still end the task (``events.aio``)."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from nats.errors import Error as NatsError
from nats.js.errors import TooManyStalledMsgsError

from events.aio import cancel_all, cancel_on_signals, raise_if_cancelling

pytestmark = pytest.mark.anyio

DEADLINE_S = 10.0


async def _publish_like_nats_py(entered: asyncio.Event) -> None:
    """What nats-py's ``publish_async`` does with a cancel while it waits for a free slot."""
    entered.set()
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        raise TooManyStalledMsgsError from None


async def _retrying(entered: asyncio.Event, stop: asyncio.Event, *, keep_cancels: bool) -> None:
    """A loop that rides out NATS errors, as the decider and the intake do, until ``stop``."""
    while not stop.is_set():
        try:
            await _publish_like_nats_py(entered)
        except NatsError:
            if keep_cancels:
                raise_if_cancelling()
            entered.clear()


async def _entered_then_cancelled(keep_cancels: bool, stop: asyncio.Event) -> asyncio.Task[None]:
    """The loop, cancelled once while inside the publish; waited on up to the deadline."""
    entered = asyncio.Event()
    task = asyncio.create_task(_retrying(entered, stop, keep_cancels=keep_cancels))
    async with asyncio.timeout(DEADLINE_S):
        await entered.wait()
    task.cancel()
    entered.clear()
    again = asyncio.create_task(entered.wait())
    try:
        async with asyncio.timeout(DEADLINE_S):
            await asyncio.wait([task, again], return_when=asyncio.FIRST_COMPLETED)
    finally:
        again.cancel()
    return task


async def test_a_cancel_turned_into_a_nats_error_ends_the_loop() -> None:
    """The handler re-raises the cancel, so one cancel ends the task."""
    task = await _entered_then_cancelled(keep_cancels=True, stop=asyncio.Event())
    await asyncio.wait([task], timeout=DEADLINE_S)
    assert task.cancelled()


async def test_without_the_check_the_loop_outlives_its_cancel() -> None:
    """The failure the check exists for: the same loop without it publishes again."""
    stop = asyncio.Event()
    task = await _entered_then_cancelled(keep_cancels=False, stop=stop)
    assert not task.done()  # back in the publish after its cancel
    stop.set()
    task.cancel()  # turned into an error again; the loop sees ``stop`` and returns
    await asyncio.wait([task], timeout=DEADLINE_S)
    assert task.done()
    assert not task.cancelled()


async def test_a_handled_error_without_a_cancel_is_retried() -> None:
    """With no cancel asked, ``raise_if_cancelling`` lets the handler go on."""
    handled = 0
    while handled < 3:
        try:
            raise TooManyStalledMsgsError
        except NatsError:
            raise_if_cancelling()
            handled += 1
    assert handled == 3


async def _swallows_first_cancel(waiting: asyncio.Event, swallowed: asyncio.Event) -> None:
    """A task that loses its first cancel, as in nats-py's ``flush``."""
    try:
        waiting.set()
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        swallowed.set()
    await asyncio.Event().wait()


async def test_cancel_all_ends_a_task_that_swallows_the_first_cancel() -> None:
    """A task that lost one cancel (as in nats-py's ``flush``) ends at the next."""
    swallowed, waiting = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(_swallows_first_cancel(waiting, swallowed))
    async with asyncio.timeout(DEADLINE_S):
        await waiting.wait()  # so the cancel lands inside the try
    await cancel_all([task], every_s=0.05)
    assert swallowed.is_set()
    assert task.cancelled()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_ends_a_main_task_that_swallows_the_first_cancel(
    sig: signal.Signals,
) -> None:
    """One SIGTERM stops a service whose first cancel was lost (a scheduler outlived ``up``)."""
    swallowed, waiting = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(_swallows_first_cancel(waiting, swallowed))
    loop = asyncio.get_running_loop()
    cancel_on_signals(task, every_s=0.05)
    try:
        async with asyncio.timeout(DEADLINE_S):
            await waiting.wait()
        os.kill(os.getpid(), sig)
        await asyncio.wait([task], timeout=DEADLINE_S)
        assert swallowed.is_set()
        assert task.cancelled()
    finally:
        task.cancel()
        for each in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(each)


async def test_one_plain_cancel_is_lost_by_such_a_task() -> None:
    """What ``cancel_on_signals`` is for: after one cancel the same task runs on."""
    swallowed, waiting = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(_swallows_first_cancel(waiting, swallowed))
    async with asyncio.timeout(DEADLINE_S):
        await waiting.wait()
    task.cancel()
    async with asyncio.timeout(DEADLINE_S):
        await swallowed.wait()
    assert not task.done()
    await cancel_all([task], every_s=0.05)
    assert task.cancelled()
