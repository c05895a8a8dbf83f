"""``ffrtmp up`` as a real process: the README's quick start, end to end, with real FFmpeg.

One farm for the module, started with the README's own ``ffrtmp up`` command (on free ports,
with a temporary data directory and ``--no-live``): every component answers, a submitted job
completes, the README's ``ffrtmp demo`` ends with the outcomes it promises, ``ffrtmp top``
draws, a killed agent is reported and restarted, and SIGTERM stops it all leaving no
process behind. The tests run in file order and share the farm; the last one stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from ffrtmp.natsd import NatsServer, NatsSettings, free_port
from tests.conftest import require_nats_server
from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0
VENV_BIN = ".venv/bin/"


class QuickStart:
    """The README's quick start: the install line, ``ffrtmp up``, ``ffrtmp demo``, the why lines."""

    def __init__(self, readme: str) -> None:
        section = readme.split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
        assert len(blocks) >= 3, "the quick start has install+up, demo and the why commands"
        steps = [step.strip() for step in blocks[0].strip().split("&&")]
        self.venv, self.install, self.up = steps[0], shlex.split(steps[1]), shlex.split(steps[2])
        self.demo = shlex.split(blocks[1].strip())
        self.why = [shlex.split(line.split("#", 1)[0]) for line in blocks[2].strip().splitlines()]


QUICK = QuickStart((ROOT / "README.md").read_text())


def ffrtmp(argv: list[str]) -> list[str]:
    """A README command with ``.venv/bin/ffrtmp`` as this venv's ``ffrtmp`` entry point."""
    assert argv[0] == f"{VENV_BIN}ffrtmp", argv
    return [str(Path(sys.executable).parent / "ffrtmp"), *argv[1:]]


def decoy_package(cwd: Path) -> Path:
    """A folder ``ffrtmp`` in ``cwd`` whose import leaves a mark: what ``python -m`` would load."""
    (cwd / "ffrtmp" / "cli").mkdir(parents=True)
    mark = cwd / "decoy-imported"
    code = f"open({str(mark)!r}, 'a').write('imported\\n')\nraise SystemExit('decoy')\n"
    (cwd / "ffrtmp" / "__init__.py").write_text(code)
    (cwd / "ffrtmp" / "cli" / "__init__.py").write_text(code)
    return mark


class Up:
    """The running ``ffrtmp up`` and how to talk to it."""

    def __init__(self, tmp: Path) -> None:
        self.nats_port, self.metrics_port, self.api_port = free_port(), free_port(), free_port()
        self.data_dir = tmp / "farm-data"
        self.out_path = tmp / "up.out"
        self.decoy = decoy_package(tmp / "cwd")  # started where a folder named ffrtmp lies
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")},
            "FFRTMP_NATS_URL": self.url,
            "XDG_CONFIG_HOME": str(tmp / "config"),
            "NO_COLOR": "1",
        }
        argv = [
            *ffrtmp(QUICK.up),
            "--nats-port", str(self.nats_port), "--metrics-port", str(self.metrics_port),
            "--api-port", str(self.api_port), "--data-dir", str(self.data_dir), "--no-live",
        ]  # fmt: skip
        self.out = self.out_path.open("wb")
        # Settings for another, secured farm must not reach up's own children (it has no auth).
        elsewhere = {"FFRTMP_NATS_USER": "elsewhere", "FFRTMP_NATS_PASSWORD": "pw-elsewhere",
                     "FFRTMP_TLS_CA": str(tmp / "no-such-ca.pem")}  # fmt: skip
        self.proc = subprocess.Popen(  # noqa: S603 -- the README's command
            argv, stdout=self.out, stderr=subprocess.STDOUT, env={**self.env, **elsewhere},
            cwd=tmp / "cwd",
        )  # fmt: skip

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def output(self) -> str:
        return self.out_path.read_text(errors="replace")

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        def tail() -> str:
            return self.output()[-2000:]

        wait_for(check, what, DEADLINE_S, poll_s=0.1, alive=[self.proc], context=tail)

    def cli(self, *args: str, argv: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        command = argv or [str(Path(sys.executable).parent / "ffrtmp"), *args]
        return subprocess.run(  # noqa: S603 -- our own CLI
            command, env=self.env, capture_output=True, text=True, timeout=DEADLINE_S, check=False
        )

    def descendants(self) -> list[psutil.Process]:
        return list(psutil.Process(self.proc.pid).children(recursive=True))

    def close(self) -> None:
        if self.proc.poll() is None:
            for proc in self.descendants():
                proc.kill()
            self.proc.kill()
            self.proc.wait()
        self.out.close()


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    """The README's ``ffrtmp up``, running, until the last test stops it."""
    require_nats_server()
    farm = Up(tmp_path_factory.mktemp("up"))
    try:
        farm.wait_for(lambda: "farm ready" in farm.output(), "ffrtmp up to be ready")
        yield farm
    finally:
        farm.close()


def test_the_quick_start_installs_this_package_with_its_entry_point() -> None:
    """The README installs this checkout in a new venv, and that install provides ``ffrtmp``."""
    assert QUICK.venv == "python3 -m venv .venv"
    assert QUICK.install == [f"{VENV_BIN}pip", "install", "-e", "."]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ffrtmp"] == "ffrtmp.cli:main"
    assert QUICK.up[1:] == ["up"]
    assert QUICK.demo[1:] == ["demo"]
    assert [argv[1:3] for argv in QUICK.why] == [["jobs", "status"], ["jobs", "history"],
                                                 ["jobs", "logs"]]  # fmt: skip


def test_up_says_where_everything_is_and_every_component_answers(up: Up) -> None:
    """The URLs and data dir are printed; agents are registered; /metrics and SQL answer."""
    text = up.output()
    assert up.url in text
    assert f"http://127.0.0.1:{up.metrics_port}/metrics" in text
    assert str(up.data_dir.resolve()) in text
    assert f"ffrtmp demo --nats {up.url}" in text
    nodes = json.loads(up.cli("nodes", "list", "--output", "json").stdout)
    assert {(n["id"], n["status"]) for n in nodes} == {("local-1", "online"), ("local-2", "online")}
    metrics_url = f"http://127.0.0.1:{up.metrics_port}/metrics"
    with urllib.request.urlopen(metrics_url, timeout=5) as reply:
        assert "ffrtmp_nodes" in reply.read().decode()
    assert (up.data_dir / "projector.duckdb").exists()


def test_children_run_the_installed_package_and_listen_on_loopback_only(up: Up) -> None:
    """A folder named ffrtmp where up started is never imported; no port is open to the network."""
    assert not up.decoy.exists(), up.decoy.read_text()
    listening = {
        (conn.laddr.ip, conn.laddr.port)
        for proc in [psutil.Process(up.proc.pid), *up.descendants()]
        for conn in proc.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    assert up.nats_port in {port for _, port in listening}
    assert up.metrics_port in {port for _, port in listening}
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, listening


def test_a_job_submitted_with_wait_completes_with_real_ffmpeg(up: Up) -> None:
    """A tiny 480p encode runs on a local agent and ``--wait`` exits 0."""
    done = up.cli("jobs", "submit", "--scenario", "480p-h264", "--duration", "0.5", "--wait",
                  "--wait-timeout-s", "45")  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout


def test_the_readme_demo_ends_with_the_outcomes_it_promises(up: Up) -> None:
    """GPU job rejected, missing input failed as user_error, the approved job and the rest done."""
    demo = up.cli(argv=[*ffrtmp(QUICK.demo), "--seconds", "0.5"])
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert re.search(r"9 jobs in \d+ s: 7 completed", out), out
    assert "1 rejected (capability_mismatch)" in out
    assert "1 failed (user_error)" in out
    assert re.search(r"approval\s+720p-h264\s+default/medium\s+completed", out), out
    failed = re.search(r"Why did job (\w+) fail, and where did it run\?", out)
    assert failed is not None, out
    jobs = {j["id"]: j for j in json.loads(up.cli("jobs", "list", "--output", "json").stdout)}
    bad = jobs[failed.group(1)]
    assert (bad["status"], bad["reason"]) == ("failed", "user_error")
    assert bad["agent"] in {"local-1", "local-2"}
    rejected = [j for j in jobs.values() if j["status"] == "rejected"]
    assert [(j["scenario"], j["reason"], j["agent"]) for j in rejected] == [
        ("1080p-h264-nvenc", "capability_mismatch", "")
    ]
    for verb in ("status", "history"):
        assert f"ffrtmp jobs {verb} {bad['id']} --nats {up.url}" in out
    status, history, logs = (up.cli(argv=ffrtmp([*argv[:-1], bad["id"]])) for argv in QUICK.why)
    assert status.returncode == 0, status.stderr
    assert "user_error: input file" in status.stdout  # as the README quotes it
    assert "does not exist on this agent" in status.stdout
    assert bad["agent"] in status.stdout
    assert f"attempt 1 on {bad['agent']}" in history.stdout
    # The demo suggests `jobs logs` exactly when the failed attempt left a log to show.
    assert (f"ffrtmp jobs logs {bad['id']}" in out) == (logs.returncode == 0), (out, logs.stderr)
    assert "Traceback" not in logs.stderr


def test_top_once_draws_the_farm(up: Up) -> None:
    """``ffrtmp top --once`` prints queues, both agents and the demo's failures."""
    top = up.cli("top", "--once")
    assert top.returncode == 0, top.stderr
    for needle in ("Queues", "Agents", "local-1", "local-2", "Recent failures", "user_error",
                   "capability_mismatch"):  # fmt: skip
        assert needle in top.stdout


def _agent(up: Up, name: str) -> psutil.Process:
    for proc in up.descendants():
        if f"--id\0{name}\0" in "\0".join(proc.cmdline()) + "\0":
            return proc
    pytest.fail(f"no process for agent {name}")


def test_a_child_that_dies_is_restarted_and_comes_back(up: Up) -> None:
    """SIGKILL of an agent: up's log names the death and the restart; the agent is online again."""
    victim = _agent(up, "local-2")
    victim.kill()
    death = "! local-2 killed by SIGKILL (restart 1 in 1 s; log "
    up.wait_for(lambda: death in up.output(), "the death and its restart to be reported")
    back = re.compile(r"local-2 restarted \(restart 1, pid (\d+)\)")
    up.wait_for(lambda: back.search(up.output()) is not None, "the agent to be restarted")
    match = back.search(up.output())
    assert match is not None
    assert up.output().count(death) == 1
    assert _agent(up, "local-2").pid == int(match.group(1)) != victim.pid

    def online_again() -> bool:
        nodes = json.loads(up.cli("nodes", "list", "--output", "json").stdout)
        return {n["id"]: n["status"] for n in nodes}.get("local-2") == "online"

    up.wait_for(online_again, "the restarted agent to be online")


def test_sigterm_stops_everything_and_leaves_no_process(up: Up) -> None:
    """SIGTERM: exit 0, "farm stopped", and every child and grandchild it had is gone."""
    before = up.descendants()
    assert len(before) >= 5  # nats-server, scheduler, projector, exporter, local-1
    up.proc.send_signal(signal.SIGTERM)
    assert up.proc.wait(DEADLINE_S) == 0, up.output()
    assert "farm stopped" in up.output()
    alive = [p for p in before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert alive == []


def test_a_busy_nats_port_is_one_line_naming_the_flag(tmp_path: Path) -> None:
    """Another server on the port: exit 1, one line saying so and which flag to change."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        argv = [str(Path(sys.executable).parent / "ffrtmp"), "up", "--no-live",
                "--nats-port", str(port), "--data-dir", str(tmp_path / "d")]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port} is already in use" in lines[0]
    assert "--nats-port" in lines[0]
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d" / "nats").glob("*"))


def test_a_child_that_dies_at_start_stops_the_farm_with_its_last_words(tmp_path: Path) -> None:
    """A child that cannot start: up names it and its reason in one line, exits 1, and stops.

    The projector's database path is a directory, so the projector exits at start.
    """
    require_nats_server()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}
    (tmp_path / "d" / "projector.duckdb").mkdir(parents=True)
    port = free_port()
    argv = [str(Path(sys.executable).parent / "ffrtmp"), "up", "--no-live", "--agents", "0",
            "--nats-port", str(port), "--metrics-port", str(free_port()),
            "--api-port", str(free_port()), "--data-dir", str(tmp_path / "d")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, env=env, timeout=DEADLINE_S, check=False)  # noqa: S603
    out, err = done.stdout, done.stderr
    assert done.returncode == 1, out.decode() + err.decode()
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err
    assert re.search(r"projector exited with code 1 at start", lines[0])
    assert "projector.duckdb" in lines[0]
    assert "Traceback" not in out.decode() + err.decode()
    assert _farm_processes(f"127.0.0.1:{port}", str(tmp_path)) == []


def test_a_missing_config_file_is_refused_by_up_itself(tmp_path: Path) -> None:
    """``FFRTMP_CONFIG`` naming no file: one line from up, exit 1, nothing started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}
    env["FFRTMP_CONFIG"] = str(tmp_path / "missing.toml")
    port = free_port()
    argv = [str(Path(sys.executable).parent / "ffrtmp"), "up", "--no-live", "--agents", "0",
            "--nats-port", str(port), "--data-dir", str(tmp_path / "d")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, env=env, timeout=DEADLINE_S, check=False)  # noqa: S603
    assert done.returncode == 1, done.stdout.decode() + done.stderr.decode()
    (line,) = done.stderr.decode().strip().splitlines()
    assert "missing.toml does not exist" in line
    assert _farm_processes(f"127.0.0.1:{port}", str(tmp_path)) == []


def _farm_processes(*needles: str) -> list[str]:
    """Live processes whose command line names the farm's port or data directory."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        line = " ".join(proc.info["cmdline"] or [])
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(n in line for n in needles):
            found.append(line)
    return found


def until_shown(proc: subprocess.Popen[bytes], out: Path, text: str) -> str:
    """``up``'s output once it shows ``text``; fails, showing it, if up exits or time is up."""

    def shown() -> str:
        return out.read_text(errors="replace")

    wait_for(lambda: text in shown(), repr(text), DEADLINE_S, poll_s=0.1, alive=[proc],
             context=shown)  # fmt: skip
    return shown()


def _start_up(
    tmp_path: Path, port: int, *flags: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``ffrtmp up`` with no agents on ``tmp_path/d``, its output in ``tmp_path/up.out``."""
    argv = [str(Path(sys.executable).parent / "ffrtmp"), "up", "--no-live", "--agents", "0",
            "--nats-port", str(port), "--metrics-port", str(free_port()),
            "--api-port", str(free_port()), "--data-dir", str(tmp_path / "d"), *flags]  # fmt: skip
    with (tmp_path / "up.out").open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603


def test_up_takes_its_prefix_from_the_config_file_but_not_its_credentials(tmp_path: Path) -> None:
    """The config file's prefix names up's farm, as for every command; its user and TLS do not.

    Those are for a farm elsewhere: up's children connect to the local farm, which has no auth
    and no TLS, so a ``tls_ca`` there reaching them would keep the farm from ever being ready.
    """
    require_nats_server()
    config = tmp_path / "config.toml"
    missing_ca = tmp_path / "no-such-ca.pem"
    config.write_text(f'prefix = "cfgfarm"\nuser = "elsewhere"\ntls_ca = "{missing_ca}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}
    proc = _start_up(tmp_path, free_port(), env={**env, "FFRTMP_CONFIG": str(config)})
    out = tmp_path / "up.out"
    try:
        until_shown(proc, out, "farm ready")
        assert "(prefix cfgfarm)" in out.read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(timeout=DEADLINE_S)


def test_kill_9_of_up_leaves_no_nats_server_and_no_child(tmp_path: Path) -> None:
    """The embedded nats-server and every child end with ``up`` even when it is SIGKILLed."""
    require_nats_server()
    proc = _start_up(tmp_path, free_port())
    out = tmp_path / "up.out"
    try:
        until_shown(proc, out, "farm ready")
        farm = psutil.Process(proc.pid).children(recursive=True)
        server = int((tmp_path / "d" / "nats" / "nats-server.pid").read_text())
        assert server in {p.pid for p in farm}
    finally:
        proc.kill()
        proc.wait()
    _, alive = psutil.wait_procs(farm, timeout=DEADLINE_S)
    for survivor in alive:
        survivor.kill()
    assert [p.pid for p in alive] == []


def test_a_stale_server_on_the_data_dir_is_named_with_its_pid(tmp_path: Path) -> None:
    """An earlier farm's nats-server still on the data dir: one line naming its PID, exit 1."""
    require_nats_server()
    port = free_port()
    store = str(tmp_path / "d" / "nats")
    with NatsServer(NatsSettings(port=port, store_dir=store, host="127.0.0.1")) as earlier:
        pid = int(earlier.pid_path.read_text())
        proc = _start_up(tmp_path, port)
        assert proc.wait(DEADLINE_S) == 1
        lines = (tmp_path / "up.out").read_text().strip().splitlines()
        assert len(lines) == 1, lines
        assert f"still runs on {Path(store).resolve()} (pid {pid})" in lines[0]
        assert earlier.running


def _children_running(pid: int, word: str) -> list[psutil.Process]:
    """Descendants of ``pid`` with ``word`` in their argv (those that end meanwhile left out)."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if word in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
    return found


def test_no_restart_leaves_a_dead_component_down_and_says_how_to_start_it(tmp_path: Path) -> None:
    """``--no-restart``: a killed exporter is reported once with the command that runs it."""
    require_nats_server()
    proc = _start_up(tmp_path, free_port(), "--no-restart")
    out = tmp_path / "up.out"

    try:
        until_shown(proc, out, "farm ready")
        (exporter,) = _children_running(proc.pid, "exporter")
        exporter.kill()
        said = until_shown(
            proc, out, "! exporter killed by SIGKILL (not restarted: --no-restart; by hand: "
        )
        line = next(x for x in said.splitlines() if x.startswith("! exporter killed"))
        assert "ffrtmp exporter run --nats nats://127.0.0.1:" in line
        quiet_until = time.monotonic() + 2.5  # past the 1 s a restart would have waited
        while time.monotonic() < quiet_until:
            assert _children_running(proc.pid, "exporter") == []
            time.sleep(0.1)
        assert "exporter restarted" not in out.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(DEADLINE_S)
    assert "farm stopped" in out.read_text()


def test_an_api_open_to_the_network_without_tokens_is_one_line(tmp_path: Path) -> None:
    """``--host 0.0.0.0`` with the API on and no tokens: exit 1 naming the fix; nothing starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}
    argv = [str(Path(sys.executable).parent / "ffrtmp"), "up", "--no-live", "--agents", "0",
            "--host", "0.0.0.0", "--nats-port", str(free_port()),  # noqa: S104
            "--metrics-port", str(free_port()), "--api-port", str(free_port()),
            "--data-dir", str(tmp_path / "d")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "--api-tokens-file" in lines[0]
    assert "--api-port 0" in lines[0]
    assert not (tmp_path / "d" / "nats").exists() or not any((tmp_path / "d" / "nats").iterdir())
