"""compose.yaml, the Dockerfile and the Prometheus and Grafana files name only what exists.

Docker cannot run here, so these tests read the files and hold every command, flag, port and
path they name against the code and the tree. The metric names in dashboards and alert rules
are checked against a real exporter in ``tests/integration/test_exporter_dashboards.py``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
import typer

from ffrtmp.cli import app, connflags
from tests.deploy_files import DASHBOARDS, DEPLOY, ROOT, load_yaml

IMAGE = "ffrtmp:latest"
PENDING = {"agent", "projector"}
"""Command groups other work is adding now: until they exist, services naming them are skipped
(shown as skips, never passed); once they exist they are checked like the rest."""
COMPOSE: dict[str, Any] = load_yaml(ROOT / "compose.yaml")
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = {name: service for name, service in SERVICES.items() if service.get("image") == IMAGE}


def resolve(argv: list[str]) -> tuple[Any, list[str], str]:
    """The (click) command an argv names under ``ffrtmp``, its own arguments and its path."""
    command: Any = typer.main.get_command(app)
    path = ["ffrtmp"]
    args = connflags.take(list(argv))  # as ffrtmp.cli.main does: the same on every command
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        name = args.pop(0)
        assert name in command.commands, f"`{' '.join([*path, name])}` is not a command"
        command, path = command.commands[name], [*path, name]
    assert not hasattr(command, "commands"), f"`{' '.join(path)}` needs a subcommand"
    return command, args, " ".join(path)


def params(argv: list[str]) -> dict[str, Any]:
    """The parameters the command would run with: parsed as the CLI parses them."""
    command, args, path = resolve(argv)
    flags = {opt for param in command.params for opt in param.opts}
    for arg in args:
        if arg.startswith("--"):
            assert arg.split("=", 1)[0] in flags, f"`{path}` has no option {arg}"
    with command.make_context(path, args) as ctx:
        return dict(ctx.params)


def defaults(argv: list[str]) -> dict[str, Any]:
    """The defaults of the command's options."""
    command, _, _ = resolve(argv)
    return {param.name: param.default for param in command.params if param.name}


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of each ``HOST:CONTAINER`` port mapping."""
    return {int(str(mapping).rsplit(":", 1)[1]) for mapping in service.get("ports", [])}


def test_compose_wires_the_whole_farm() -> None:
    """NATS, two schedulers, projector, exporter, CPU and GPU agents, Prometheus, Grafana."""
    wanted = {"nats", "scheduler-1", "scheduler-2", "projector", "exporter", "agent-cpu-1"}
    wanted |= {"agent-gpu", "prometheus", "grafana", "api"}
    assert wanted <= set(SERVICES)
    runs = {name: service["command"][:2] for name, service in OURS.items()}
    assert runs["scheduler-1"] == runs["scheduler-2"] == ["scheduler", "run"]
    gpu = SERVICES["agent-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    for name, service in OURS.items():
        assert service["build"] == ".", name
        if name != "nats":
            assert service["depends_on"]["nats"] == {"condition": "service_healthy"}, name


def test_what_others_wait_for_has_a_healthcheck() -> None:
    """Every dependency is waited for as healthy, and so has a healthcheck of its own."""
    for name, service in SERVICES.items():
        needs = service.get("depends_on", {})
        assert isinstance(needs, dict), f"{name}: depends_on without a condition"
        for other, how in needs.items():
            assert how == {"condition": "service_healthy"}, (name, other)
            assert "healthcheck" in SERVICES[other], f"{name} waits for {other}, which has none"


PROBE = re.compile(r"urlopen\('http://localhost:(\d+)(/[a-z]+)[?']")
PATHS = {
    "server": "/jsz",
    "exporter": "/metrics",
    "agent": "/health",
    "api": "/readyz",
}  # jsz: the setup's buckets


@pytest.mark.parametrize("name", sorted(n for n, s in OURS.items() if "healthcheck" in s))
def test_healthchecks_probe_what_the_service_serves(name: str) -> None:
    """An HTTP probe asks a port the command listens on for its path; a CLI probe is real."""
    test = OURS[name]["healthcheck"]["test"]
    assert test[0] == "CMD"
    if test[1] == "ffrtmp":
        parsed = params(test[2:])
        assert parsed.get("nats_url", parsed.get("nats")) == "nats://nats:4222"
        return
    assert test[1:3] == ["python", "-c"]
    found = PROBE.search(test[3])
    assert found is not None, test
    argv = OURS[name]["command"]
    parsed = params(argv)
    ports = {parsed.get(key) for key in ("port", "http_port", "health_port")}
    assert int(found.group(1)) in ports, (name, found.group(1), ports)
    assert found.group(2) == PATHS[argv[0] if argv[0] != "exporter" else "exporter"]


def test_agents_have_stable_ids_that_the_nats_users_name() -> None:
    """Each agent has a fixed --id from deploy/nats/users.conf: re-created, it is the same node."""
    ids = {}
    for name, service in OURS.items():
        argv = service["command"]
        if argv[:2] == ["agent", "run"]:
            ids[name] = argv[argv.index("--id") + 1]
            assert service["hostname"] == ids[name], name
    assert sorted(ids.values()) == ["cpu-1", "cpu-2", "gpu-1"]
    users = (DEPLOY / "nats" / "users.conf").read_text()
    for agent in ids.values():
        assert f"user: agent-{agent}," in users, agent


@pytest.mark.parametrize("name", sorted(OURS))
def test_every_command_and_flag_exists(name: str) -> None:
    """Each service's command is an ffrtmp command, and its flags parse as the CLI parses."""
    argv = OURS[name]["command"]
    if argv[0] in PENDING and argv[0] not in typer.main.get_command(app).commands:  # type: ignore[attr-defined]
        pytest.skip(f"`ffrtmp {argv[0]}` is not in the CLI yet")
    parsed = params(argv)
    if "nats_url" in parsed:
        assert parsed["nats_url"] == "nats://nats:4222"


@pytest.mark.parametrize("name", sorted(n for n, s in OURS.items() if "ports" in s))
def test_published_ports_are_what_the_command_listens_on(name: str) -> None:
    """A service publishes the ports its command listens on, and those are the defaults."""
    argv = OURS[name]["command"]
    parsed, default = params(argv), defaults(argv)
    listening = {key: parsed[key] for key in ("port", "http_port") if key in parsed}
    assert container_ports(OURS[name]) == set(listening.values())
    for key, port in listening.items():
        assert port == default[key], f"{name}: --{key.replace('_', '-')} is not the default"


def test_prometheus_scrapes_the_exporter_and_grafana_reads_prometheus() -> None:
    """The scrape target, the data source URL and the published ports agree."""
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (ffrtmp,) = (job for job in config["scrape_configs"] if job["job_name"] == "ffrtmp")
    targets = [target for static in ffrtmp["static_configs"] for target in static["targets"]]
    exporter_port = params(SERVICES["exporter"]["command"])["port"]
    assert targets == [f"exporter:{exporter_port}"]
    (agents,) = (job for job in config["scrape_configs"] if job["job_name"] == "ffrtmp-agents")
    scraped = {target for static in agents["static_configs"] for target in static["targets"]}
    health = {
        f"{name}:{params(service['command'])['health_port']}"
        for name, service in OURS.items()
        if service["command"][:2] == ["agent", "run"] and "profiles" not in service
    }
    assert scraped == health
    assert ffrtmp["metrics_path"] == "/metrics"
    sources = load_yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = sources["datasources"]
    assert source["url"] == f"http://prometheus:{min(container_ports(SERVICES['prometheus']))}"
    assert source["type"] == "prometheus"


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_dashboards_take_their_data_source_from_a_variable(path: Any) -> None:
    """No hard-coded uid: each panel and query reads ``${datasource}``, a Prometheus picker."""
    dashboard = json.loads(path.read_text())
    (variable,) = (v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert (variable["name"], variable["query"]) == ("datasource", "prometheus")
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]


SUM_OR_COUNT = re.compile(r"(\w*)\((ffrtmp_\w+_(?:sum|count))\b|(ffrtmp_\w+_(?:sum|count))\b")


@pytest.mark.parametrize("path", sorted(DASHBOARDS.glob("*.json")), ids=lambda p: p.stem)
def test_result_panels_plot_recent_rates_not_all_time_means(path: Any) -> None:
    """A ``_sum`` or ``_count`` series is read through ``rate()``: a mean over minutes, not ever."""
    for panel in json.loads(path.read_text())["panels"]:
        for target in panel["targets"]:
            for function, inside, bare in SUM_OR_COUNT.findall(target["expr"]):
                assert not bare, (panel["title"], bare)
                assert function in {"rate", "increase"}, (panel["title"], inside)


def mounts() -> list[tuple[str, str, str]]:
    """Every bind mount of a host path: (service, host path, container path)."""
    found = []
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            host, container = str(volume).split(":")[:2]
            if host.startswith("."):
                found.append((name, host, container))
    return found


def test_every_mounted_file_exists() -> None:
    """Each bind-mounted host path is in the repository; named volumes are declared."""
    assert mounts()
    for name, host, _ in mounts():
        assert (ROOT / host).exists(), f"{name} mounts {host}, which does not exist"
    declared = set(COMPOSE["volumes"])
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":")[0]
            assert source.startswith(".") or source in declared, (name, source)


def test_configs_point_at_what_compose_mounts() -> None:
    """Prometheus's rule file and Grafana's dashboard folder are where compose mounts them."""
    targets = {(name, container) for name, _, container in mounts()}
    assert ("prometheus", "/etc/prometheus") in targets
    (config_flag,) = (f for f in SERVICES["prometheus"]["command"] if f.startswith("--config"))
    assert config_flag == "--config.file=/etc/prometheus/prometheus.yml"
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    for rule_file in config["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file(), rule_file
    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "ffrtmp.yml")
    for provider in providers["providers"]:
        assert ("grafana", provider["options"]["path"]) in targets
    assert ("grafana", "/etc/grafana/provisioning") in targets
    home = SERVICES["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.rsplit("/", 1)[1] in {path.name for path in DASHBOARDS.glob("*.json")}
    assert {path.stem for path in DASHBOARDS.glob("*.json")} == {"scheduler", "workers", "hardware"}


def test_dockerfile_copies_what_exists_and_runs_ffrtmp() -> None:
    """Every COPY source is in the tree, every package is copied, the entry point is ffrtmp."""
    text = (ROOT / "Dockerfile").read_text()
    sources = [
        part
        for line in re.findall(r"^COPY (.+)$", text, flags=re.MULTILINE)
        for part in line.split()[:-1]
    ]
    for source in sources:
        assert (ROOT / source).exists(), source
    shipped = {"events", "projections", "agent", "ffrtmp", "pyproject.toml", "nats.conf"}
    assert shipped <= set(sources)
    assert 'ENTRYPOINT ["ffrtmp"]' in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not set(sources) & set(ignored)


def test_an_api_on_every_interface_is_given_tokens() -> None:
    """The API refuses to start beyond loopback without tokens: compose must pass them."""
    apis = {n: s for n, s in OURS.items() if s["command"][:2] == ["api", "run"]}
    assert apis
    for name, service in apis.items():
        parsed = params(service["command"])
        assert parsed["host"] == "0.0.0.0", name  # noqa: S104 -- what a container must listen on
        tokens = service.get("environment", {}).get("FFRTMP_API_TOKENS", "")
        assert tokens.startswith("${FFRTMP_API_TOKENS:?"), f"{name}: no tokens, it would not start"
