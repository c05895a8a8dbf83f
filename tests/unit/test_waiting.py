"""The tests' polling helpers fail as they say: at the deadline, or when a watched process exits."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.waiting import wait_for, wait_until


def test_a_condition_that_never_holds_fails_naming_it_with_its_context() -> None:
    """Past the deadline: an AssertionError naming what was awaited, then the context."""
    with pytest.raises(AssertionError, match=r"waiting for the moon: log tail"):
        wait_for(lambda: False, "the moon", 0.05, context=lambda: "log tail")


def test_a_watched_process_that_exits_fails_the_wait_at_once() -> None:
    """A process in ``alive`` that has exited fails the wait before its deadline."""
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(4)"])
    proc.wait()
    with pytest.raises(AssertionError, match="exited with 4"):
        wait_for(lambda: False, "nothing", 600.0, alive=[proc])


def test_a_condition_that_holds_returns() -> None:
    """A condition that holds on the third look ends the wait."""
    looks = iter([False, False, True])
    wait_for(lambda: next(looks), "the third look", 10.0)


@pytest.mark.anyio
async def test_an_async_condition_that_never_holds_fails_naming_it() -> None:
    """The event loop's form fails the same way."""

    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match="waiting for never"):
        await wait_until(never, "never", 0.05)
