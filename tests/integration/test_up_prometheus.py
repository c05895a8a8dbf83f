"""A real Prometheus, started as the README says, scrapes a real ``ffrtmp up`` farm.

The README's two commands (``ffrtmp up --agent-port-base N`` and ``prometheus
--config.file=deploy/prometheus/local.yml …``) run from a copy of the repository's
``deploy/prometheus`` with only free ports swapped in. Prometheus finds the exporter and the
agent through the file_sd targets ``up`` wrote, a real 480p encode completes, and then every
dashboard query and every alert expression is evaluated through Prometheus's HTTP API: each
must evaluate, the alert rules must all be healthy, and the panels that a CPU farm can fill
must have data.
"""

from __future__ import annotations

import json
import math
import re
import shlex
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ffrtmp.lifeline import end
from ffrtmp.natsd import free_port
from tests.conftest import require_nats_server
from tests.deploy_files import DEPLOY, ROOT, alert_exprs, dashboard_exprs
from tests.promtool import binary
from tests.waiting import wait_for

DEADLINE_S = 90.0
SECTION = (ROOT / "README.md").read_text().split("**Prometheus for the local farm.**", 1)[1]
UP, PROMETHEUS = (
    shlex.split(line)
    for line in re.search(r"```bash\n(.*?)```", SECTION, re.DOTALL).group(1).splitlines()  # type: ignore[union-attr]
)
HARDWARE = re.compile(r"gpu|temperature|power|energy|vmaf|psnr|ssim")
"""Panels a CPU-only farm without quality passes or power meters has no data for."""


def api(port: int, path: str, **query: str) -> Any:
    """One Prometheus API call; its ``data``, after checking the call succeeded."""
    url = f"http://127.0.0.1:{port}/api/v1/{path}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.loads(reply.read())
    assert body["status"] == "success", body
    assert not body.get("warnings"), body
    return body["data"]


def answers(url: str) -> bool:
    """Whether ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:  # noqa: S310 -- loopback
            return bool(reply.status == 200)
    except OSError:
        return False


class Stack:
    """``ffrtmp up`` and Prometheus, started from a copy of the deploy folder."""

    def __init__(self, root: Path) -> None:
        shutil.copytree(DEPLOY / "prometheus", root / "deploy" / "prometheus")
        self.root = root
        self.web_port, self.agent_base = free_port(), free_port()
        self.nats_port, self.metrics_port = free_port(), free_port()
        ffrtmp = str(Path(sys.executable).parent / "ffrtmp")
        assert UP[:2] == ["ffrtmp", "up"]
        up = [ffrtmp, *UP[1:], "--agents", "1", "--no-live"]
        up[up.index("--agent-port-base") + 1] = str(self.agent_base)
        up += ["--nats-port", str(self.nats_port), "--metrics-port", str(self.metrics_port)]
        up += ["--api-port", str(free_port())]
        self.up_log = (root / "up.out").open("wb")
        self.procs = [self._spawn(up, self.up_log)]
        self.wait(lambda: "farm ready" in self.output(), "ffrtmp up to be ready")
        prometheus = [binary("prometheus"), *PROMETHEUS[1:]]
        listen = next(i for i, arg in enumerate(prometheus) if arg.startswith("--web.listen"))
        prometheus[listen] = f"--web.listen-address=127.0.0.1:{self.web_port}"
        self.prom_log = (root / "prometheus.out").open("wb")
        self.procs.append(self._spawn(prometheus, self.prom_log))

    def _spawn(self, argv: list[str], out: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(  # noqa: S603 -- the README's commands
            argv, cwd=self.root, stdout=out, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return (self.root / "up.out").read_text(errors="replace")

    def wait(self, check: Callable[[], bool], what: str) -> None:
        def tails() -> str:
            prometheus = (self.root / "prometheus.out").read_text(errors="replace")[-1500:]
            return f"\nup: {self.output()[-1500:]}\nprometheus: {prometheus}"

        wait_for(check, what, DEADLINE_S, poll_s=0.2, alive=self.procs, context=tails)

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = api(self.web_port, "query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def close(self) -> None:
        for proc in reversed(self.procs):
            end(proc, 30)
        self.up_log.close()
        if hasattr(self, "prom_log"):
            self.prom_log.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The farm and its Prometheus, until the module ends."""
    require_nats_server()
    binary("prometheus")
    running = Stack(tmp_path_factory.mktemp("prom"))
    try:
        yield running
    finally:
        running.close()


@pytest.mark.timeout(240)
def test_prometheus_scrapes_the_exporter_and_the_agent_that_up_wrote_down(stack: Stack) -> None:
    """Both jobs of local.yml are up, at the ports ``up`` chose and ``--agent-port-base`` set."""
    port = stack.web_port
    stack.wait(lambda: answers(f"http://127.0.0.1:{port}/-/ready"), "Prometheus to be ready")

    def both_up() -> bool:
        active = api(port, "targets")["activeTargets"]
        return {(t["labels"]["job"], t["health"]) for t in active} == {
            ("ffrtmp", "up"),
            ("ffrtmp-agents", "up"),
        }

    stack.wait(both_up, "both scrape jobs to be up")
    agents = {t["labels"]["instance"]: t["labels"] for t in api(port, "targets")["activeTargets"]}
    assert agents[f"127.0.0.1:{stack.agent_base}"]["agent"] == "local-1"
    assert agents[f"127.0.0.1:{stack.metrics_port}"]["job"] == "ffrtmp"
    for component in ("exporter", "agent"):
        assert stack.query(f'ffrtmp_build_info{{component="{component}"}}'), component
        job = "ffrtmp" if component == "exporter" else "ffrtmp-agents"
        assert stack.query(f'process_resident_memory_bytes{{job="{job}"}}'), job


@pytest.mark.timeout(240)
def test_every_dashboard_query_and_alert_evaluates_on_real_data(stack: Stack) -> None:
    """After a real encode, every query evaluates; the CPU farm's panels all have data."""
    ffrtmp = str(Path(sys.executable).parent / "ffrtmp")
    url = f"nats://127.0.0.1:{stack.nats_port}"
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [ffrtmp, "jobs", "submit", "--nats", url, "--scenario", "480p-h264", "--duration", "0.5",
         "--wait", "--wait-timeout-s", "60"],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    def rated() -> bool:
        runs = stack.query('rate(ffrtmp_job_duration_seconds_count{queue="default"}[5m]) > 0')
        fps = stack.query("count_over_time(ffrtmp_result_encode_frames_per_second_count[5m]) > 1")
        return bool(runs and fps)

    stack.wait(rated, "two scrapes that see the completed job")
    empty = [
        (source, expr)
        for source, exprs in dashboard_exprs().items()
        for expr in exprs
        if not stack.query(expr) and not HARDWARE.search(expr)
    ]
    assert not empty, f"no data: {empty}"
    for expr in alert_exprs():
        stack.query(expr)  # evaluates (an alert that does not fire is an empty result)
    runs = 'ffrtmp_job_duration_seconds_bucket{queue="default"}'
    (p50,) = stack.query(f"histogram_quantile(0.5, sum by (le) (rate({runs}[5m])))")
    assert math.isfinite(float(p50["value"][1]))
    rules = [rule for group in api(stack.web_port, "rules")["groups"] for rule in group["rules"]]
    assert len(rules) == len(alert_exprs())

    def evaluated() -> bool:
        rules = [r for g in api(stack.web_port, "rules")["groups"] for r in g["rules"]]
        return all(r["health"] == "ok" for r in rules)

    stack.wait(evaluated, "every alert rule to evaluate cleanly")
