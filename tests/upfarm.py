"""One real ``ffrtmp up`` for the tests that need the whole product: the API, the console, docs.

Free ports for NATS, the API and the metrics; a data directory and an empty config home under
the test's folder, so no user's config file leaks in; an environment that reaches the farm
(``FFRTMP_NATS_URL`` set, this interpreter's ``ffrtmp`` first on ``PATH``). Started with one
real agent and no live view; ready when ``up`` says "farm ready" (its own probes: scheduler,
projector, agents, API) and the API's ``/readyz`` answers 200; stopped with SIGTERM, which
``up`` passes on to its children, then SIGKILL after a grace period (a killed ``up`` still
takes its children with it: ``ffrtmp.lifeline``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final, TypeVar

from ffrtmp.client.probe import http_ok
from ffrtmp.lifeline import end
from ffrtmp.natsd import free_port
from tests.conftest import require_nats_server
from tests.waiting import wait_for

BIN: Final = Path(sys.executable).parent
START_S: Final = 90.0
"""How long ``up`` may take to be ready (FFmpeg probes and an agent's registration included)."""
STOP_S: Final = 60.0
"""How long ``up`` may take to stop its children before it is killed."""


U = TypeVar("U", bound="Started")


def environment(**more: str) -> dict[str, str]:
    """The environment of the tests, less every ``FFRTMP_`` setting, plus ``more``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}, **more}


class Started:
    """A process of ours, its output in ``root/<name>.out``: waited on while it lives."""

    def __init__(self, root: Path, name: str, args: list[str], env: dict[str, str]) -> None:
        """Start ``ffrtmp args`` in ``root`` with exactly ``env``."""
        self.root, self.env = root, env
        self.out_path = root / f"{name}.out"
        self._out = self.out_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 -- our own CLI
            [str(BIN / "ffrtmp"), *args], cwd=root, stdout=self._out, stderr=subprocess.STDOUT,
            env=env,
        )  # fmt: skip

    def output(self) -> str:
        """What it has printed so far."""
        return self.out_path.read_text(errors="replace")

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        """Poll ``check`` while it lives; fail with the tail of its output."""
        wait_for(check, what, START_S, poll_s=0.2, alive=[self.proc],
                 context=lambda: self.output()[-3000:])  # fmt: skip

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after a grace period) and, through it, its children."""
        end(self.proc, STOP_S)
        self._out.close()


class Up(Started):
    """``ffrtmp up --agents 1 --no-live`` on free ports under ``root``, ready once built."""

    def __init__(self, root: Path, *args: str) -> None:
        """Start it with ``args`` added to its command line; return once it is ready."""
        self.nats_port, self.api_port = free_port(), free_port()
        self.url = f"nats://127.0.0.1:{self.nats_port}"
        self.base = f"http://127.0.0.1:{self.api_port}"
        env = environment(
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            FFRTMP_NATS_URL=self.url,
            XDG_CONFIG_HOME=str(root / "config"),
            NO_COLOR="1",
        )
        argv = [
            "up", "--agents", "1", "--no-live",
            "--nats-port", str(self.nats_port), "--api-port", str(self.api_port),
            "--metrics-port", str(free_port()), "--data-dir", str(root / "farm"), *args,
        ]  # fmt: skip
        super().__init__(root, "up", argv, env)
        try:
            self.wait_for(lambda: "farm ready" in self.output(), "ffrtmp up to be ready")
            self.wait_for(lambda: http_ok(f"{self.base}/readyz"), "the API's /readyz")
        except BaseException:
            self.stop()
            raise


@contextlib.contextmanager
def running(start: Callable[[], U]) -> Iterator[U]:
    """What ``start`` starts, until the block ends; skipped without nats-server (CI: failed)."""
    require_nats_server()
    farm = start()
    try:
        yield farm
    finally:
        farm.stop()
