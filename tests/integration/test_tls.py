"""TLS with a self-signed CA made in the test: the right CA connects, a wrong one is refused.

The certificates come from the ``openssl`` binary (no Python crypto dependency); a machine
without it skips these tests.
"""

from __future__ import annotations

import gc
import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError

from events.jetstream import JetStreamEventStore
from events.job_events import JobQueued
from events.store import Append
from events.subjects import Subjects
from ffrtmp.natsd import NatsServer, NatsSettings, free_port, packaged_config
from tests.pki import client_cert, make_ca, server_cert
from tests.secured import start_secured

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("nats_binary")]
SUBJECTS = Subjects("tls")


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    """A CA, a server certificate it signed, and a second, unrelated CA."""
    make_ca(tmp_path, "ca")
    make_ca(tmp_path, "other")
    server_cert(tmp_path, "ca")
    return tmp_path


@pytest.fixture
def tls_server(pki: Path) -> Iterator[NatsServer]:
    """A nats-server that requires TLS on its client port."""
    tls = (
        f'\ntls {{\n  cert_file: "{pki / "server.pem"}"\n  key_file: "{pki / "server.key"}"\n'
        "  timeout: 2\n}\n"
    )
    conf = pki / "tls.conf"
    conf.write_text(packaged_config().read_text() + tls)
    settings = NatsSettings(
        port=free_port(), store_dir=str(pki / "nats"), host="127.0.0.1", config=str(conf)
    )
    server = NatsServer(settings)
    try:
        start_secured(server, lambda: _connect(server, _context(pki / "ca.pem")), SUBJECTS)
        yield server
    finally:
        server.kill()


def _context(ca: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca))


def _tls_url(server: NatsServer) -> str:
    return f"tls://127.0.0.1:{server.settings.port}"


async def _connect(server: NatsServer, context: ssl.SSLContext | None) -> NatsClient:
    async def quiet(_: Exception) -> None:
        pass

    url = _tls_url(server) if context else server.url
    return await nats.connect(
        url, tls=context, allow_reconnect=False, max_reconnect_attempts=1, error_cb=quiet
    )


async def test_a_client_trusting_the_ca_appends_over_tls(tls_server: NatsServer, pki: Path) -> None:
    """With the CA that signed the server's certificate, the store works as usual."""
    nc = await _connect(tls_server, _context(pki / "ca.pem"))
    store = JetStreamEventStore(nc, SUBJECTS)
    try:
        await store.start()
        item = Append(
            subject=SUBJECTS.job_event("j", "sched"), event=JobQueued(job="j", at=1.0), msg_id="1"
        )
        assert await store.append(item) == 1
        assert nc.connected_url is not None
        assert nc.connected_url.scheme == "tls"
    finally:
        await nc.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_a_wrong_ca_and_plain_text_are_refused(tls_server: NatsServer, pki: Path) -> None:
    """A client trusting another CA fails verification; a client without TLS is turned away."""
    with pytest.raises((ssl.SSLError, NatsError, OSError)):
        await _connect(tls_server, _context(pki / "other.pem"))
    with pytest.raises((NatsError, OSError)):
        await _connect(tls_server, None)
    gc.collect()  # nats-py leaves a refused connection's socket to the collector


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One ``ffrtmp`` command as a process, bounded: a hang fails the test instead of stalling."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FFRTMP_", "SSL_CERT"))}
    command = [sys.executable, "-c", "from ffrtmp.cli import main; main()", *args]
    return subprocess.run(  # noqa: S603 -- our own CLI
        command, env={**base, "XDG_CONFIG_HOME": "/nonexistent", "FFRTMP_PREFIX": "tls",
                      **(env or {})},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_cli_names_an_untrusted_certificate_and_trusts_tls_ca(
    tls_server: NatsServer, pki: Path
) -> None:
    """Without the CA: one line naming the certificate problem and --tls-ca; with it: works."""
    url = _tls_url(tls_server)
    for args in (("--nats", url), ("--nats", tls_server.url)):  # tls://, and TLS the server asks
        refused = _cli("events", "tail", "-n", "1", *args)
        errors = [line for line in refused.stderr.splitlines() if line.strip()]
        assert refused.returncode == 1, refused.stderr
        assert len(errors) == 1, refused.stderr
        assert "certificate is not trusted" in errors[0], errors[0]
        assert "--tls-ca" in errors[0], errors[0]
    ca = str(pki / "ca.pem")
    trusted = _cli("events", "tail", "-n", "1", "--nats", url, "--tls-ca", ca)
    assert trusted.returncode == 0, trusted.stderr
    from_env = _cli("events", "tail", "-n", "1", env={"FFRTMP_NATS_URL": url,
                                                          "FFRTMP_TLS_CA": ca})  # fmt: skip
    assert from_env.returncode == 0, from_env.stderr


@pytest.fixture
def mutual_tls_server(pki: Path) -> Iterator[NatsServer]:
    """A nats-server that requires TLS and a client certificate signed by its CA."""
    cert, key = client_cert(pki, "ca")
    tls = (
        f'\ntls {{\n  cert_file: "{pki / "server.pem"}"\n  key_file: "{pki / "server.key"}"\n'
        f'  ca_file: "{pki / "ca.pem"}"\n  verify: true\n  timeout: 2\n}}\n'
    )
    conf = pki / "mtls.conf"
    conf.write_text(packaged_config().read_text() + tls)
    settings = NatsSettings(
        port=free_port(), store_dir=str(pki / "nats"), host="127.0.0.1", config=str(conf)
    )
    server = NatsServer(settings)
    context = _context(pki / "ca.pem")
    context.load_cert_chain(str(cert), str(key))
    try:
        start_secured(server, lambda: _connect(server, context), SUBJECTS)
        yield server
    finally:
        server.kill()


def test_the_cli_presents_its_client_certificate(mutual_tls_server: NatsServer, pki: Path) -> None:
    """--tls-cert and --tls-key (or their variables) pass mutual TLS; without them: one line."""
    url, ca = _tls_url(mutual_tls_server), str(pki / "ca.pem")
    bare = _cli("events", "tail", "-n", "1", "--nats", url, "--tls-ca", ca)
    assert bare.returncode == 1, bare.stderr
    assert len([line for line in bare.stderr.splitlines() if line.strip()]) == 1, bare.stderr
    assert "client certificate" in bare.stderr  # TLS 1.3 may only see the server hang up
    assert "pass --tls-cert and --tls-key" in bare.stderr
    cert, key = str(pki / "client.pem"), str(pki / "client.key")
    flags = _cli("events", "tail", "-n", "1", "--nats", url, "--tls-ca", ca,
                 "--tls-cert", cert, "--tls-key", key)  # fmt: skip
    assert flags.returncode == 0, flags.stderr
    env = {"FFRTMP_NATS_URL": url, "FFRTMP_TLS_CA": ca, "FFRTMP_TLS_CERT": cert,
           "FFRTMP_TLS_KEY": key}  # fmt: skip
    assert _cli("events", "tail", "-n", "1", env=env).returncode == 0
    half = _cli("events", "tail", "-n", "1", "--nats", url, "--tls-ca", ca, "--tls-cert", cert)
    assert half.returncode == 1
    assert "--tls-key" in half.stderr
