"""Test certificates from the ``openssl`` binary, with no Python crypto dependency.

A CA, a server certificate for 127.0.0.1 and localhost, a client certificate for mutual TLS.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def openssl(*args: str, cwd: Path) -> None:
    """Run the ``openssl`` binary; skip the test where there is none."""
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("no openssl binary to make test certificates")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True)  # noqa: S603


def make_ca(directory: Path, name: str) -> Path:
    """A self-signed CA ``name``: ``name.pem`` and ``name.key`` in ``directory``."""
    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={name}",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory,
    )  # fmt: skip
    return directory / f"{name}.pem"


def server_cert(directory: Path, ca: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost signed by ``ca``, and its key."""
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", "server.key", "-out", "server.csr", cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "1", "-extfile", "san.ext", "-out", "server.pem",
        cwd=directory,
    )  # fmt: skip
    return directory / "server.pem", directory / "server.key"


def client_cert(directory: Path, ca: str) -> tuple[Path, Path]:
    """A client certificate signed by ``ca`` (for mutual TLS)."""
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=operator",
        "-keyout", "client.key", "-out", "client.csr", cwd=directory,
    )  # fmt: skip
    openssl(
        "x509", "-req", "-in", "client.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "1", "-out", "client.pem", cwd=directory,
    )  # fmt: skip
    return directory / "client.pem", directory / "client.key"
