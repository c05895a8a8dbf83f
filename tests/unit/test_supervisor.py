"""The supervisor of ``ffrtmp up`` with real child processes: order, deadlines, no survivors."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ffrtmp.farm import Child, Role
from ffrtmp.restart import NO_RESTART, GiveUp, Restart, RestartPolicy
from ffrtmp.supervisor import Exit, Restarted, Supervisor
from tests.waiting import wait_for

# A child that records its SIGTERM in a shared file, then exits after `delay` seconds.
_POLITE = """
import pathlib, signal, sys, time
name, record, delay = sys.argv[1], pathlib.Path(sys.argv[2]), float(sys.argv[3])
def stop(*_):
    with record.open("a") as f:
        f.write(name + "\\n")
    time.sleep(delay)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
pathlib.Path(sys.argv[2] + "." + name + ".up").touch()
while True:
    time.sleep(1)
"""
# A child that ignores SIGTERM and leaves a grandchild in a process group of its own.
_STUBBORN = """
import os, pathlib, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                       start_new_session=True)
pathlib.Path(sys.argv[1]).write_text(str(kid.pid))
while True:
    time.sleep(1)
"""
DEADLINE_S = 20.0


def _child(name: str, role: Role, *args: str) -> Child:
    return Child(name=name, role=role, argv=(sys.executable, "-c", *args))


def test_children_stop_in_order_agents_first(tmp_path: Path) -> None:
    """SIGTERM reaches every agent before the scheduler, and the scheduler before the exporter."""
    record = tmp_path / "stopped"
    children = [
        _child("exporter", Role.EXPORTER, _POLITE, "exporter", str(record), "0"),
        _child("scheduler", Role.SCHEDULER, _POLITE, "scheduler", str(record), "0"),
        _child("local-1", Role.AGENT, _POLITE, "local-1", str(record), "0.3"),
        _child("local-2", Role.AGENT, _POLITE, "local-2", str(record), "0"),
    ]
    supervisor = Supervisor(children, tmp_path / "logs", {})
    supervisor.start()
    for child in children:
        up = Path(f"{record}.{child.name}.up")
        wait_for(up.exists, str(up), DEADLINE_S)
    ended = supervisor.stop(DEADLINE_S)
    order = record.read_text().split()
    assert set(order[:2]) == {"local-1", "local-2"}
    assert order[2:] == ["scheduler", "exporter"]
    assert all(e.code == 0 for e in ended), ended
    assert all(not psutil.pid_exists(pid) for pid in supervisor.pids().values())


def test_a_child_that_ignores_sigterm_is_killed_with_its_descendants(tmp_path: Path) -> None:
    """Past the deadline the child is SIGKILLed, and a grandchild in its own group dies too."""
    grandchild_file = tmp_path / "grandchild"
    children = [_child("local-1", Role.AGENT, _STUBBORN, str(grandchild_file))]
    supervisor = Supervisor(children, tmp_path / "logs", {})
    supervisor.start()
    wait_for(grandchild_file.exists, str(grandchild_file), DEADLINE_S)
    grandchild = psutil.Process(int(grandchild_file.read_text()))
    ended = supervisor.stop(0.5)
    assert ended == [Exit(name="local-1", code=-signal.SIGKILL)]
    assert ended[0].describe() == "killed by SIGKILL"
    assert not grandchild.is_running() or grandchild.status() == psutil.STATUS_ZOMBIE


def _changes(supervisor: Supervisor, count: int) -> list[Exit | Restarted]:
    """Poll until ``count`` deaths and restarts were reported (a poll interval, not a sleep)."""
    seen: list[Exit | Restarted] = []
    end = time.monotonic() + DEADLINE_S
    while len(seen) < count:
        assert time.monotonic() < end, f"only {seen} reported"
        seen += supervisor.poll()
        time.sleep(0.02)
    return seen


def test_a_dead_child_is_reported_once_and_left_down_with_no_restart(tmp_path: Path) -> None:
    """``--no-restart``: ``poll`` reports the death once, with its code and what it printed."""
    children = [
        _child("scheduler", Role.SCHEDULER, "import sys; print('no lease for you'); sys.exit(3)"),
    ]
    supervisor = Supervisor(children, tmp_path / "logs", {}, NO_RESTART)
    supervisor.start()
    reported = _changes(supervisor, 1)
    assert reported == [Exit(name="scheduler", code=3, then=GiveUp(why="--no-restart"))]
    assert isinstance(reported[0], Exit)
    assert reported[0].describe() == "exited with code 3"
    assert supervisor.poll() == []
    assert not supervisor.alive("scheduler")
    assert supervisor.state("scheduler") == "down: exited with code 3 (--no-restart)"
    assert "no lease for you" in supervisor.log_tail("scheduler")
    assert supervisor.stop(1.0) == []


def test_a_dead_child_is_restarted_until_the_start_limit(tmp_path: Path) -> None:
    """A crash loop: restarted after a doubling delay, then left down once it starts too often."""
    children = [_child("projector", Role.PROJECTOR, "import sys; print('boom'); sys.exit(2)")]
    policy = RestartPolicy(delay_s=0.05, max_delay_s=1.0, burst=3, interval_s=60.0)
    supervisor = Supervisor(children, tmp_path / "logs", {}, policy)
    supervisor.start()
    first = supervisor.pids()["projector"]
    changes = _changes(supervisor, 5)
    pids = [c.pid for c in changes if isinstance(c, Restarted)]
    assert changes == [
        Exit(name="projector", code=2, then=Restart(after_s=0.05, number=1)),
        Restarted(name="projector", pid=pids[0], number=1),
        Exit(name="projector", code=2, then=Restart(after_s=0.1, number=2)),
        Restarted(name="projector", pid=pids[1], number=2),
        Exit(name="projector", code=2, then=GiveUp(why="start limit: 3 starts within 60 s")),
    ]
    assert len({first, *pids}) == 3
    assert supervisor.restarts("projector") == 2
    assert supervisor.state("projector").startswith("down: exited with code 2 (start limit")
    assert supervisor.log_tail("projector", 10).count("boom") == 3
    assert "--- ffrtmp up: restart 2 (exited with code 2) ---" in supervisor.log_tail("projector")
    assert supervisor.poll() == []
    assert supervisor.stop(1.0) == []


def test_a_restarted_child_is_up_again_and_stops_with_the_rest(tmp_path: Path) -> None:
    """SIGKILL of a running child: ``restarting in …``, then ``up`` with a new pid; stop ends it."""
    children = [_child("local-1", Role.AGENT, "import time; time.sleep(600)")]
    policy = RestartPolicy(delay_s=0.5, burst=5)
    supervisor = Supervisor(children, tmp_path / "logs", {}, policy)
    supervisor.start()
    victim = psutil.Process(supervisor.pids()["local-1"])
    victim.kill()
    (death,) = _changes(supervisor, 1)
    assert death == Exit(name="local-1", code=-signal.SIGKILL, then=Restart(after_s=0.5, number=1))
    assert supervisor.state("local-1") in {"restarting in 0 s (killed by SIGKILL)",
                                           "restarting in 1 s (killed by SIGKILL)"}  # fmt: skip
    (back,) = _changes(supervisor, 1)
    assert isinstance(back, Restarted)
    assert supervisor.state("local-1") == "up"
    assert supervisor.pids()["local-1"] == back.pid != victim.pid
    assert [(e.name, e.then) for e in supervisor.stop(DEADLINE_S)] == [("local-1", None)]
    assert not psutil.pid_exists(back.pid)


_PARENT = """
import sys, time
from pathlib import Path
from ffrtmp.farm import Child, Role
from ffrtmp.supervisor import Supervisor
child = Child(name="local-1", role=Role.AGENT, argv=(sys.executable, "-c", sys.argv[1]))
supervisor = Supervisor([child], Path(sys.argv[2]), {})
supervisor.start()
Path(sys.argv[3]).write_text(str(supervisor.pids()["local-1"]))
time.sleep(600)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
def test_children_end_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of the supervising process: the kernel sends its children SIGTERM."""
    pid_file = tmp_path / "child.pid"
    argv = [sys.executable, "-c", _PARENT, "import time; time.sleep(600)", str(tmp_path / "logs"),
            str(pid_file)]  # fmt: skip
    parent = subprocess.Popen(argv, cwd=Path(__file__).resolve().parents[2])  # noqa: S603
    wait_for(pid_file.exists, str(pid_file), DEADLINE_S)
    child = psutil.Process(int(pid_file.read_text()))
    parent.kill()
    parent.wait()
    try:
        child.wait(DEADLINE_S)  # raises TimeoutExpired if the child outlives its parent
    finally:
        with contextlib.suppress(psutil.Error):
            child.kill()
