"""The one-command farm's plan: what `ffrtmp up` starts, with which flags, in what order."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import typer

from ffrtmp.cli import app
from ffrtmp.farm import (
    DEFAULT_API_PORT,
    FarmSettings,
    Layout,
    Role,
    agent_names,
    announcement,
    client_flags,
    plan,
    stop_groups,
)
from tests.unit.test_deploy_files import params

CLI = ("python", "-m", "ffrtmp.cli")
SETTINGS = FarmSettings(
    data_dir="/srv/farm", nats_port=14222, metrics_port=19090, agents=3, prefix="lab",
    agent_ports=(18001, 18002, 18003), stop_timeout_s=12.0,
)  # fmt: skip
LAYOUT = Layout.under(SETTINGS.data_dir)


def _has(group: str) -> bool:
    return group in typer.main.get_command(app).commands  # type: ignore[attr-defined]


def test_every_child_is_a_real_command_pointed_at_the_farm() -> None:
    """Each child's argv parses as the CLI parses it, with the farm's NATS URL and prefix."""
    children = plan(SETTINGS, LAYOUT, CLI)
    assert [c.name for c in children] == ["scheduler", "projector", "exporter", "api",
                                          "local-1", "local-2", "local-3"]  # fmt: skip
    for child in children:
        assert child.argv[:3] == CLI
        if child.role is Role.AGENT and not _has("agent"):
            continue  # the agent command group lands with the agent service
        parsed = params(list(child.argv[3:]))
        assert parsed["nats_url" if "nats_url" in parsed else "nats"] == "nats://127.0.0.1:14222"
        assert parsed["prefix"] == "lab"


def test_data_lives_under_the_data_dir_and_ports_are_the_farm_s() -> None:
    """The projector's DB, the exporter's projection and the agents' work dirs share one root."""
    by_name = {c.name: c for c in plan(SETTINGS, LAYOUT, CLI)}
    projector, exporter = by_name["projector"].argv, by_name["exporter"].argv
    assert projector[projector.index("--db") + 1] == str(Path("/srv/farm/projector.duckdb"))
    assert exporter[exporter.index("--data-dir") + 1] == str(Path("/srv/farm/exporter"))
    assert exporter[exporter.index("--metrics-port") + 1] == "19090"
    agents = [c for c in by_name.values() if c.role is Role.AGENT]
    assert [c.port for c in agents] == [18001, 18002, 18003]
    for agent in agents:
        argv = agent.argv
        assert argv[argv.index("--id") + 1] == agent.name
        assert argv[argv.index("--health-port") + 1] == str(agent.port)
        assert argv[argv.index("--work-dir") + 1] == str(Path("/srv/farm/agents") / agent.name)
        assert float(argv[argv.index("--drain-grace-s") + 1]) < SETTINGS.stop_timeout_s


def test_agents_stop_first_and_the_exporter_last() -> None:
    """The API (a client) stops first, then all agents together, the scheduler and the rest."""
    groups = stop_groups(plan(SETTINGS, LAYOUT, CLI))
    assert [[c.name for c in g] for g in groups] == [
        ["api"], ["local-1", "local-2", "local-3"], ["scheduler"], ["projector"], ["exporter"],
    ]  # fmt: skip


def test_the_api_listens_where_the_farm_does_with_its_tokens() -> None:
    """``--api-port`` and ``--host`` reach ``api run``; a tokens file is passed by path; 0: none."""
    settings = msgspec.structs.replace(SETTINGS, api_tokens_file="/srv/tokens", host="10.0.0.5")
    api = {c.name: c for c in plan(settings, LAYOUT, CLI)}["api"].argv
    assert api[api.index("--api-port") + 1] == str(DEFAULT_API_PORT)
    assert api[api.index("--host") + 1] == "10.0.0.5"
    assert api[api.index("--tokens-file") + 1] == "/srv/tokens"
    parsed = params(list(api[3:]))
    assert parsed["port"] == DEFAULT_API_PORT
    none = msgspec.structs.replace(SETTINGS, api_port=None)
    assert "api" not in {c.name for c in plan(none, LAYOUT, CLI)}


def test_no_agents_is_a_farm_without_agents() -> None:
    """``--agents 0`` plans the control plane only."""
    settings = FarmSettings(agents=0)
    assert {c.role for c in plan(settings, LAYOUT, CLI)} == {
        Role.SCHEDULER, Role.PROJECTOR, Role.EXPORTER, Role.API,
    }  # fmt: skip


def test_each_agent_needs_a_health_port() -> None:
    """A plan with fewer health ports than agents is a bug, caught before anything starts."""
    with pytest.raises(ValueError, match="health ports"):
        plan(FarmSettings(agents=2, agent_ports=(1,)), LAYOUT, CLI)


def test_agent_ids_are_unique() -> None:
    """Local agents are numbered from 1."""
    assert agent_names(3) == ["local-1", "local-2", "local-3"]
    assert agent_names(0) == []


@pytest.mark.parametrize(
    ("port", "prefix", "flags"),
    [
        (4222, "ffrtmp", ""),
        (14222, "ffrtmp", " --nats nats://127.0.0.1:14222"),
        (4222, "lab", " --prefix lab"),
    ],
)
def test_commands_shown_carry_flags_only_when_needed(port: int, prefix: str, flags: str) -> None:
    """The announced commands reach this farm: no flags on the defaults, else --nats/--prefix."""
    settings = FarmSettings(nats_port=port, prefix=prefix, agents=0)
    assert client_flags(settings) == flags
    text = "\n".join(announcement(settings, LAYOUT, plan(settings, LAYOUT, CLI)))
    assert f"nats://127.0.0.1:{port}" in text
    assert f"ffrtmp demo{flags}\n" in text
    assert "http://127.0.0.1:9090/metrics" in text


def test_announcement_names_every_agent_s_health_port() -> None:
    """Where each agent's /health is."""
    text = "\n".join(announcement(SETTINGS, LAYOUT, plan(SETTINGS, LAYOUT, CLI)))
    assert "local-1 :18001, local-2 :18002, local-3 :18003" in text
    assert LAYOUT.root in text


def test_media_roots_are_passed_to_every_local_agent() -> None:
    """``ffrtmp up --media-root`` confines each local agent (``--media-root`` per root)."""
    settings = msgspec.structs.replace(SETTINGS, media_roots=("/srv/media", "/mnt/in"))
    for child in plan(settings, LAYOUT, CLI):
        if child.role is Role.AGENT:
            text = " ".join(child.argv)
            assert "--media-root /srv/media --media-root /mnt/in" in text
        else:
            assert "--media-root" not in child.argv
