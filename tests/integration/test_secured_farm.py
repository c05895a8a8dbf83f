"""The documented secured setup, run for real: every process as its own NATS user, a job completes.

nats-server runs the shipped settings plus the users ``ffrtmp auth conf`` generates, passwords in
its environment (one as a bcrypt hash, set as docs/cluster.md says). Then, as separate
processes, each with its own user, its password in the environment and never on a command line:
``ffrtmp streams create`` (the setup step, as ``scheduler``), ``ffrtmp scheduler run``,
``ffrtmp agent run`` (real FFmpeg), ``ffrtmp projector run``, ``ffrtmp exporter run`` and the CLI
as ``operator``. The job must complete, its log and SQL row be readable by the operator, the
exporter must show it, the server must have reported no permission violation, and no process
may have printed a password.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from events.subjects import Subjects
from ffrtmp.authconf import password_variable, render, users
from ffrtmp.natsd import NatsServer, NatsSettings, free_port, packaged_config, port_in_use
from tests.waiting import wait_for

pytestmark = pytest.mark.usefixtures("nats_binary")
PREFIX = "secfarm"
AGENT = "a1"
CLI = [sys.executable, "-c", "from ffrtmp.cli import main; main()"]
DEADLINE_S = 90.0


def password(user: str) -> str:
    """Each user's password (long enough to find in any output)."""
    return f"pw-{user}-7f3c9a1e"


def bcrypt(secret: str) -> str:
    """A bcrypt hash of ``secret`` (the C library's crypt; nats-server checks it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # noqa: PLC0415 -- deprecated module, for a test hash only

        return crypt.crypt(secret, "$2b$10$" + "abcdefghijklmnopqrstuu")


class Farm:
    """The secured server and the processes of one test, all stopped at the end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.server: NatsServer | None = None
        self.url = ""

    def start_server(self, setenv: Callable[[str, str], None]) -> None:
        subjects = Subjects(PREFIX)
        (self.root / "users.conf").write_text(render(subjects, [AGENT]))
        conf = self.root / "nats-auth.conf"
        conf.write_text(packaged_config().read_text() + '\ninclude "users.conf"\n')
        for user in users(subjects, [AGENT]):
            secret = password(user.name)
            # The operator's password is stored as a bcrypt hash, quoted inside the variable.
            stored = f'"{bcrypt(secret)}"' if user.name == "operator" else secret
            setenv(password_variable(user.name), stored)
        settings = NatsSettings(
            port=free_port(), store_dir=str(self.root / "nats"), host="127.0.0.1", config=str(conf)
        )
        self.server = NatsServer(settings)
        self.server.spawn()
        self.url = self.server.url
        wait_for(
            lambda: port_in_use(settings.port), "nats-server to listen", DEADLINE_S, poll_s=0.1
        )

    def env(self, user: str) -> dict[str, str]:
        """A process's environment: its user and password, the farm, no config file."""
        base = {
            k: v for k, v in os.environ.items() if not k.startswith(("FFRTMP_PASS_", "FFRTMP_"))
        }
        return base | {
            "FFRTMP_NATS_URL": self.url,
            "FFRTMP_PREFIX": PREFIX,
            "FFRTMP_NATS_USER": user,
            "FFRTMP_NATS_PASSWORD": password(user),
            "XDG_CONFIG_HOME": str(self.root / "no-config"),
            "NO_COLOR": "1",
        }

    def run(
        self, user: str, *args: str, timeout: float = DEADLINE_S
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 -- our own CLI
            [*CLI, *args], env=self.env(user), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip

    def start(self, name: str, user: str, *args: str, in_url: bool = False) -> None:
        """Start a process as ``user``; ``in_url``: the old way, the password in its URL."""
        env = self.env(user)
        if in_url:
            del env["FFRTMP_NATS_USER"], env["FFRTMP_NATS_PASSWORD"]
            env["FFRTMP_NATS_URL"] = self.url.replace("nats://", f"nats://{user}:{password(user)}@")
        with (self.root / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(  # noqa: S603 -- our own CLI
                [*CLI, *args], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def wait_log(self, name: str, marker: str) -> None:
        wait_for(lambda: marker in self.log(name) or self.procs[name].poll() is not None, name,
                 DEADLINE_S, poll_s=0.1)  # fmt: skip
        assert marker in self.log(name), self.log(name)

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.server is not None:
            self.server.kill()


@pytest.fixture
def farm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Farm]:
    """A secured server (the passwords only in its environment); processes started by the test."""
    for key in [k for k in os.environ if k.startswith("FFRTMP_PASS_")]:
        monkeypatch.delenv(key)
    farm = Farm(tmp_path)
    try:
        farm.start_server(monkeypatch.setenv)
        yield farm
    finally:
        farm.stop()


def metrics(port: int) -> str:
    """The exporter's /metrics, or "" while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return str(r.read().decode())
    except OSError:
        return ""


def _http(url: str, body: dict[str, object] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310 -- our own API
        return dict(json.loads(reply.read()))


def _the_api_works_as_the_operator(base: str) -> None:
    """The API, as the ``operator`` user: it reads the job, submits one that completes, lists."""
    assert _http(f"{base}/api/v1/jobs/secjob")["job"]["status"] == "completed"
    spec = {"id": "secapi", "scenario": "480p-h264", "duration_s": 1}
    assert _http(f"{base}/api/v1/jobs", spec)["decision"]["decided"] is True
    wait_for(lambda: _http(f"{base}/api/v1/jobs/secapi")["job"]["status"] == "completed",
             "the API's job", DEADLINE_S, poll_s=0.2)  # fmt: skip
    assert "ffmpeg" in _http(f"{base}/api/v1/jobs/secapi")["command"]
    assert [node["id"] for node in _http_list(f"{base}/api/v1/nodes")] == [AGENT]
    answer = _http(f"{base}/api/v1/sql", {"sql": "SELECT count(*) AS n FROM jobs"})
    assert answer["columns"] == ["n"]
    assert answer["rows"][0][0] in {1, 2}  # the projector may not have the API's job yet


def _http_list(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(url, timeout=30) as reply:  # noqa: S310 -- our own API
        return list(json.loads(reply.read()))


@pytest.mark.timeout(240)
def test_a_job_completes_with_every_process_as_its_own_user(farm: Farm) -> None:
    """Setup, scheduler, real agent, projector, exporter and CLI, each its own user: it works."""
    setup = farm.run("scheduler", "streams", "create")
    assert setup.returncode == 0, setup.stderr
    (farm.root / "work").mkdir()
    farm.start("scheduler", "scheduler", "scheduler", "run")
    farm.start("agent", f"agent-{AGENT}", "agent", "run", "--id", AGENT, "--health-port", "0",
               "--heartbeat-s", "0.5", "--work-dir", str(farm.root / "work"))  # fmt: skip
    db = str(farm.root / "p.duckdb")
    farm.start("projector", "projector", "projector", "run", "--db", db, in_url=True)
    port = free_port()
    farm.start("exporter", "exporter", "exporter", "run", "--port", str(port), "--host",
               "127.0.0.1")  # fmt: skip
    api = free_port()
    farm.start("api", "operator", "api", "run", "--api-port", str(api))
    farm.wait_log("agent", "health on port")
    farm.wait_log("scheduler", "scheduler ")
    farm.wait_log("api", "api on ")
    job = "secjob"
    done = farm.run("operator", "jobs", "submit", "--id", job, "--scenario", "480p-h264",
                    "--duration", "1", "--wait", "--wait-timeout-s", "80")  # fmt: skip
    assert done.returncode == 0, (
        done.stdout,
        done.stderr,
        farm.log("agent"),
        farm.log("scheduler"),
    )
    logs = farm.run("operator", "jobs", "logs", job)
    assert logs.returncode == 0, logs.stderr
    query = "SELECT job, status FROM jobs"
    sql = farm.run("operator", "sql", query, "-o", "json")
    assert sql.returncode == 0, sql.stderr
    assert '["secjob","completed"]' in sql.stdout.replace(" ", ""), sql.stdout
    wait_for(lambda: 'ffrtmp_jobs_by_state{state="completed"} 1.0' in metrics(port),
             "the exporter", DEADLINE_S, poll_s=0.1)  # fmt: skip
    assert f'agent="{AGENT}"' in metrics(port)
    _the_api_works_as_the_operator(f"http://127.0.0.1:{api}")
    assert farm.server is not None
    server_log = farm.server.log_path.read_text(errors="replace")
    assert "Permissions Violation" not in server_log, server_log[-3000:]
    assert "Authorization Violation" not in server_log, server_log[-3000:]
    printed = "".join(farm.log(n) for n in farm.procs) + done.stdout + done.stderr
    for user in users(Subjects(PREFIX), [AGENT]):
        assert password(user.name) not in printed, user.name
    assert not re.search(r"Traceback", printed), printed[-3000:]
    assert "nats://projector:***@127.0.0.1" in farm.log("projector")  # shown, redacted
