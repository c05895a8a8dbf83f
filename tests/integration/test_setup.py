"""The setup step: ``ffrtmp streams create`` makes every stream and bucket; processes only bind.

Each command runs as a real process (``ffrtmp.cli.main``) against the session's nats-server, so
what is checked is what a person typing the command gets: the streams and buckets on the server,
or one line naming the setup step and nothing created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from events.streams import all_streams, bucket_streams
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer

pytestmark = pytest.mark.anyio
CLI = [sys.executable, "-c", "from ffrtmp.cli import main; main()"]


def ffrtmp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run one ``ffrtmp`` command to its end (no config file of the developer's)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}
    base["XDG_CONFIG_HOME"] = "/nonexistent"
    return subprocess.run(  # noqa: S603 -- our own CLI
        [*CLI, *args],
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def names_and_replicas(url: str, prefix: str) -> dict[str, int]:
    """Every stream of the prefix (buckets' streams included) and its replica count."""
    nc = await nats.connect(url)
    try:
        found = {}
        js, offset = nc.jetstream(), 0
        # The session's server holds every test's streams, and the API answers a page at a time.
        while page := await js.streams_info(offset=offset):
            offset += len(page)
            for info in page:
                name = str(info.config.name)
                if prefix.upper() in name:
                    found[name] = int(info.config.num_replicas or 1)
        return found
    finally:
        await nc.close()


async def test_streams_create_makes_every_stream_and_bucket(
    nats_server: NatsServer, prefix: str
) -> None:
    """One command makes the five streams and the lease, snapshot and log buckets, R1 here."""
    subjects = Subjects(prefix)
    done = ffrtmp(
        "streams", "create", "--nats", nats_server.url, env={"FFRTMP_PREFIX": prefix,
                                                              "FFRTMP_REPLICAS": "1"}
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    want = [str(c.name) for c in all_streams(subjects)] + bucket_streams(subjects)
    assert sorted(await names_and_replicas(nats_server.url, prefix)) == sorted(want)
    assert set((await names_and_replicas(nats_server.url, prefix)).values()) == {1}
    assert "replicas 1" in done.stdout
    again = ffrtmp("streams", "create", "--nats", nats_server.url, "--prefix", prefix)
    assert again.returncode == 0, again.stderr  # running it again changes nothing, fails nothing


@pytest.mark.parametrize(
    "command",
    [
        ("scheduler", "run"),
        ("agent", "run", "--health-port", "0", "--id", "setup-1"),
        ("exporter", "run", "--port", "0"),
        ("check",),
    ],
    ids=lambda c: c[0],
)
@pytest.mark.parametrize("settings", ["flags", "config file"])
async def test_a_process_without_the_setup_names_it_and_creates_nothing(
    nats_server: NatsServer, prefix: str, command: tuple[str, ...], settings: str, tmp_path: Path
) -> None:
    """Processes bind to what the setup made: before it, one line saying to run it, exit 1.

    Each process reads its server and prefix from flags, or from the config file alone: the
    error names this prefix's stream either way.
    """
    if settings == "flags":
        done = ffrtmp(*command, "--nats", nats_server.url, "--prefix", prefix)
    else:
        config = tmp_path / "ffrtmp.toml"
        config.write_text(f'nats = "{nats_server.url}"\nprefix = "{prefix}"\n')
        done = ffrtmp(*command, env={"FFRTMP_CONFIG": str(config)})
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert len(lines) == 1, done.stderr  # the agent also logs what it detected, as INFO
    assert "Traceback" not in done.stderr
    assert "ffrtmp streams create" in lines[0], lines[0]
    assert prefix.upper() in lines[0], lines[0]
    assert await names_and_replicas(nats_server.url, prefix) == {}
