"""``ffrtmp api run --https-cert/--https-key``: the API over TLS; a bad pair is one line."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ffrtmp.natsd import NatsServer, free_port
from tests.pki import make_ca, server_cert
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(120)
BIN = Path(sys.executable).parent
DEADLINE_S = 60.0


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("FFRTMP_")}


@pytest.fixture
def farm_url(nats_server: NatsServer) -> str:
    """The session's server with a farm's streams under a prefix of this test's own."""
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [str(BIN / "ffrtmp"), "streams", "create", "--nats", nats_server.url, "--prefix", "https"],
        capture_output=True, text=True, env=_env(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return nats_server.url


def test_the_api_serves_https_with_its_certificate(tmp_path: Path, farm_url: str) -> None:
    """A client trusting the CA reads /healthz over TLS; plain HTTP on that port gets nothing."""
    make_ca(tmp_path, "ca")
    cert, key = server_cert(tmp_path, "ca")
    port = free_port()
    out = tmp_path / "api.out"
    with out.open("wb") as log:
        api = subprocess.Popen(  # noqa: S603 -- our own CLI
            [str(BIN / "ffrtmp"), "api", "run", "--nats", farm_url, "--prefix", "https",
             "--api-port", str(port), "--https-cert", str(cert), "--https-key", str(key)],
            stdout=log, stderr=subprocess.STDOUT, env=_env(),
        )  # fmt: skip
    try:
        wait_for(lambda: "api on" in out.read_text(), "the API", DEADLINE_S, poll_s=0.1,
                 alive=[api], context=out.read_text)  # fmt: skip
        assert f"https://127.0.0.1:{port}/" in out.read_text()
        trusted = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        with httpx.Client(verify=trusted, timeout=10) as client:

            def answers() -> bool:
                try:
                    return client.get(f"https://127.0.0.1:{port}/healthz").status_code == 200
                except httpx.ConnectError:
                    return False

            wait_for(answers, "HTTPS to answer", DEADLINE_S, poll_s=0.1, alive=[api])
            assert client.get(f"https://127.0.0.1:{port}/api/v1/jobs").json()["rows"] == []
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    finally:
        api.terminate()
        api.wait(30)


@pytest.mark.parametrize("which", ["missing key", "key of another certificate", "cert only"])
def test_a_bad_certificate_pair_is_one_line(tmp_path: Path, which: str) -> None:
    """The pair is checked before anything listens: exit 1, one line naming the files."""
    make_ca(tmp_path, "ca")
    cert, _ = server_cert(tmp_path, "ca")
    flags = {
        "missing key": ["--https-cert", str(cert), "--https-key", str(tmp_path / "nope.key")],
        "key of another certificate": ["--https-cert", str(cert), "--https-key",
                                       str(tmp_path / "ca.key")],
        "cert only": ["--https-cert", str(cert)],
    }[which]  # fmt: skip
    done = subprocess.run(  # noqa: S603 -- our own CLI
        [str(BIN / "ffrtmp"), "api", "run", "--api-port", str(free_port()), *flags],
        capture_output=True, text=True, env=_env(), timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "https" in lines[0].lower()
