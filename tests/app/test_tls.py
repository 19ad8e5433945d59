"""Mutual TLS on the app server's endpoint: only clients with a certificate from the
deployment's CA are served; the web side uses Twisted's ``ssl:`` client endpoints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import clientFromString, connectProtocol

from shillings_app.config import AppConfig, ConfigError, TlsFiles
from shillings_proto import pb
from shillings_proto.framing import ConnectionLostError, ShillingsClientProtocol
from tests.stack.helpers import ROOT


def _make_certs(out: Path, *args: str) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "certs.py"), str(out), *args],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The deployment's CA (app-0, web-0) and a stranger's CA (web-x)."""
    ours = _make_certs(tmp_path_factory.mktemp("pki"), "--app", "app-0", "--web", "web-0")
    theirs = _make_certs(tmp_path_factory.mktemp("other"), "--web", "web-x")
    return ours, theirs


def _tls(d: Path) -> TlsFiles:
    return TlsFiles(str(d / "app-0.pem"), str(d / "app-0.key"), str(d / "ca" / "ca.pem"))


def _client(port: int, ca: Path, cert: Path | None, hostname: str = "app-0") -> str:
    address = f"ssl:host=127.0.0.1:port={port}:caCertsDir={ca}:hostname={hostname}"
    if cert is not None:
        address += f":certKey={cert}.pem:privateKey={cert}.key"
    return address


async def _health(address: str) -> int:
    proto = await connectProtocol(clientFromString(reactor, address), ShillingsClientProtocol())
    try:
        response = await proto.call(
            pb.Request(command=pb.HLT, health=pb.HealthRequest()), timeout=5.0
        )
        return int(response.status.code)
    finally:
        if proto.is_connected:
            proto.transport.loseConnection()
            await proto.lost_deferred


@pytest_twisted.ensureDeferred
async def test_a_client_certificate_from_the_ca_is_served(make_server, pki) -> None:
    ours, _ = pki
    server = await make_server(tls=_tls(ours))
    assert await _health(_client(server.port, ours / "ca", ours / "web-0")) == 200


@pytest_twisted.ensureDeferred
async def test_clients_without_a_certificate_of_the_ca_are_refused(make_server, pki) -> None:
    ours, theirs = pki
    server = await make_server(tls=_tls(ours))
    for address in (
        _client(server.port, ours / "ca", None),  # no client certificate
        _client(server.port, ours / "ca", theirs / "web-x"),  # another CA's
        f"tcp:127.0.0.1:{server.port}",  # no TLS at all
    ):
        with pytest.raises(ConnectionLostError):
            await _health(address)


@pytest_twisted.ensureDeferred
async def test_the_client_checks_the_server_certificate(make_server, pki) -> None:
    ours, theirs = pki
    server = await make_server(tls=_tls(ours))
    with pytest.raises(ConnectionLostError):
        await _health(_client(server.port, theirs / "ca", ours / "web-0"))  # not its CA
    with pytest.raises(ConnectionLostError):
        await _health(_client(server.port, ours / "ca", ours / "web-0", hostname="app-9"))


def test_config_reads_tls_and_allows_a_network_address_with_it(pki) -> None:
    ours, _ = pki
    env = {
        "SHILLINGS_JWT_SECRET": "x" * 40,
        "SHILLINGS_MYSQL_DSN": "mysql://root@127.0.0.1/shillings",
        "SHILLINGS_APP_LISTEN": "tcp:7070:interface=0.0.0.0",
    }
    with pytest.raises(ConfigError):
        AppConfig.from_env(env)
    tls_env = {
        "SHILLINGS_APP_TLS_CERT": str(ours / "app-0.pem"),
        "SHILLINGS_APP_TLS_KEY": str(ours / "app-0.key"),
        "SHILLINGS_APP_TLS_CA": str(ours / "ca" / "ca.pem"),
    }
    assert AppConfig.from_env({**env, **tls_env}).tls == _tls(ours)
    with pytest.raises(ConfigError, match="TLS needs all"):
        AppConfig.from_env({**env, "SHILLINGS_APP_TLS_CERT": str(ours / "app-0.pem")})
