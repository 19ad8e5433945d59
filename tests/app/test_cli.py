"""``shillings-app migrate`` and ``shillings-app serve`` as real processes."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time

from shillings_app import migrations
from shillings_proto import pb
from tests import protocol_requests as messages
from tests.app.helpers import sql

DB = "cli_test_db"


def _cli(*args: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "import sys; from shillings_app.cli import main; sys.exit(main())",
        *args,
    ]


def _env(tmp_path, mariadb) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHILLINGS_")}
    env.update(
        SHILLINGS_VAR=str(tmp_path),
        SHILLINGS_MYSQL_DSN=mariadb.dsn(DB),
        SHILLINGS_APP_LISTEN=f"unix:{tmp_path}/app.sock",
        SHILLINGS_BCRYPT_COST="4",
    )
    return env


def _connect(s: socket.socket, path: str) -> None:
    """Connect, allowing for the moment between the socket's bind and its listen."""
    for _ in range(100):
        try:
            s.connect(path)
            return
        except ConnectionRefusedError:
            time.sleep(0.05)
    s.connect(path)


def _call(path: str, request: pb.Request) -> pb.Response:
    request.request_id = 7
    payload = request.SerializeToString()
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        _connect(s, path)
        s.sendall(struct.pack(">I", len(payload)) + payload)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the response"
            data += chunk
    return pb.Response.FromString(data[4:])


def test_migrate_then_serve_then_sigterm(tmp_path, mariadb):
    env = _env(tmp_path, mariadb)
    try:
        first = subprocess.run(_cli("migrate"), env=env, capture_output=True, text=True, timeout=60)
        assert first.returncode == 0, first.stderr
        assert "applied 0001_initial" in first.stdout
        second = subprocess.run(
            _cli("migrate"), env=env, capture_output=True, text=True, timeout=60
        )
        assert second.stdout.strip() == "schema up to date"

        log_path = tmp_path / "app.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(_cli("serve"), env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            sock = f"{tmp_path}/app.sock"
            deadline = time.monotonic() + 30
            while not os.path.exists(sock) and time.monotonic() < deadline:
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.05)
            response = _call(sock, messages.health())
            assert response.request_id == 7
            assert response.status.code == 200 and response.health.database_ok
        finally:
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=30)
        output = log_path.read_text()
        assert returncode == 0, output
        assert "HLT request_id=7 trace_id=- status=200 reason=- duration_ms=" in output
        assert "app server stopped" in output
        assert (tmp_path / "jwt_secret").exists()
    finally:
        sql(mariadb.dsn("mysql"), f"DROP DATABASE IF EXISTS {DB}")


def test_serve_creates_and_migrates_an_empty_database(tmp_path, mariadb):
    env = _env(tmp_path, mariadb)
    try:
        with open(tmp_path / "app.log", "w") as log:
            proc = subprocess.Popen(_cli("serve"), env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(f"{tmp_path}/app.sock") and time.monotonic() < deadline:
                assert proc.poll() is None
                time.sleep(0.05)
            versions = sql(
                mariadb.dsn(DB), "SELECT version FROM schema_migrations ORDER BY version"
            )
            assert versions == [(m.version,) for m in migrations.available()]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        every = ", ".join(m.version for m in migrations.available())
        assert f"applied migrations {every}" in (tmp_path / "app.log").read_text()
    finally:
        sql(mariadb.dsn("mysql"), f"DROP DATABASE IF EXISTS {DB}")


def test_bad_configuration_exits_with_status_2(tmp_path, mariadb):
    env = _env(tmp_path, mariadb)
    env["SHILLINGS_TOKEN_TTL"] = "forever"
    result = subprocess.run(_cli("serve"), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "SHILLINGS_TOKEN_TTL" in result.stderr
