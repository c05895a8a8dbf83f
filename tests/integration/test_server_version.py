"""A nats-server too old for the log is refused by every process, naming both versions.

Debian's ``nats-server`` package (2.9.10 in bookworm and trixie) accepts the
``Nats-Expected-Last-Subject-Sequence-Subject`` header and ignores it, so every append checked
against a job's subjects conflicted and jobs cycled ``timed out (budget)``. The test runs that
real binary (``FFRTMP_OLD_NATS_SERVER``, else Debian's ``/usr/sbin/nats-server``; CI installs the
package, unpacked) and the real commands against it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from events.connection import MIN_SERVER
from ffrtmp.natsd import free_port, port_in_use
from tests.waiting import wait_for


def old_server() -> str:
    """The old binary, its version checked; skipped locally (failed in CI) when absent."""
    path = os.environ.get("FFRTMP_OLD_NATS_SERVER") or shutil.which("nats-server", path="/usr/sbin")
    if not path:
        if os.environ.get("CI"):
            pytest.fail("no old nats-server: .ci/run unpacks Debian's nats-server package")
        pytest.skip("no old nats-server (set FFRTMP_OLD_NATS_SERVER or install Debian's)")
    version = subprocess.run(  # noqa: S603 -- a server binary we were pointed at
        [path, "--version"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    found = tuple(int(n) for n in re.findall(r"\d+", version)[:3])
    if found >= MIN_SERVER:
        pytest.skip(f"{path} is {version.strip()}, not older than the minimum")
    return path


@pytest.fixture
def old_url(tmp_path: Path) -> Iterator[str]:
    """An old nats-server with JetStream on a free loopback port."""
    port = free_port()
    argv = [old_server(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path)]
    with (tmp_path / "nats.log").open("wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        wait_for(lambda: port_in_use(port), "the old nats-server to listen", 15, poll_s=0.05,
                 alive=[proc], context=(tmp_path / "nats.log").read_text)  # fmt: skip
        yield f"nats://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    "command", [("streams", "create"), ("scheduler", "run"), ("check",)], ids=" ".join
)
def test_every_process_refuses_an_old_server(old_url: str, command: tuple[str, ...]) -> None:
    """One line naming the version found and the one required; exit 1; nothing created."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [sys.executable, "-c", "from ffrtmp.cli import main; main()", *command, "--nats", old_url],
        env={**base, "XDG_CONFIG_HOME": "/nonexistent"},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(errors) == 1, done.stderr
    assert re.search(r"nats-server \d+\.\d+\.\d+ at nats://127\.0\.0\.1:\d+ is too old", errors[0])
    assert ".".join(map(str, MIN_SERVER)) in errors[0], errors[0]
