"""What the container relies on, outside Docker: programs logging to stdout with their names
(SHILLINGS_LOG_STDOUT, scripts/logprefix.py) and scripts/healthcheck.py's checks.
`make docker-test` runs the image itself."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from shillings_stack.config import StackConfig, StackError
from shillings_stack.render import render, render_programs
from tests.app.helpers import sql
from tests.stack.helpers import ROOT, clean_env, free_port

pytestmark = pytest.mark.stack

LOGPREFIX = str(ROOT / "scripts" / "logprefix.py")
HEALTHCHECK = str(ROOT / "scripts" / "healthcheck.py")


@pytest.fixture
def var() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shl-container-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_log_stdout_sends_every_program_to_stdout_with_its_name(var: Path) -> None:
    cfg = StackConfig.from_env(
        clean_env(SHILLINGS_VAR=str(var), SHILLINGS_LOG_STDOUT="1", WEB_PROCS="2")
    )
    plain = render_programs(StackConfig.from_env(clean_env(SHILLINGS_VAR=str(var), WEB_PROCS="2")))
    options = ServerOptions()
    options.realize(args=["-c", str(render(cfg))])
    assert options.parse_warnings == []
    processes = [p for g in options.process_group_configs for p in g.process_configs]
    assert sorted(p.name for p in processes) == [
        "app_00", "hooks_00", "hooks_01", "mariadb", "nginx", "redis", "web_00", "web_01"
    ]  # fmt: skip
    wrapper = f"{ROOT}/.venv/bin/python {LOGPREFIX} "
    for process in processes:
        assert process.stdout_logfile == "/dev/stdout"
        assert process.stdout_logfile_maxbytes == 0
        assert process.redirect_stderr
        assert process.command.startswith(wrapper)
        # The program itself is the one the plain rendering runs, there with its own log
        # file (web and app processes: `--log-file`).
        program = process.command.removeprefix(wrapper)
        assert "--log-file" not in program
        assert re.search(rf"^command = {re.escape(program)}( --log-file \S+)?$", plain, re.M)
    with pytest.raises(StackError):
        StackConfig.from_env(clean_env(SHILLINGS_VAR=str(var), SHILLINGS_LOG_STDOUT="yes"))


def test_logprefix_names_every_line_of_stdout_and_stderr() -> None:
    env = dict(os.environ, SUPERVISOR_PROCESS_NAME="web_07")
    script = "echo one; echo two >&2; printf 'no newline'; exit 3"
    done = subprocess.run(
        [sys.executable, LOGPREFIX, "sh", "-c", script],
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert done.returncode == 3  # the program's own exit status (it was exec'd in place)
    assert done.stderr == b""
    assert done.stdout == b"web_07 | one\nweb_07 | two\nweb_07 | no newline\n"


def test_logprefix_keeps_what_the_program_writes_while_stopping() -> None:
    """supervisord stops a program by signalling its whole process group: the line relay
    must outlive the signal and pass on the program's last words."""
    env = dict(os.environ, SUPERVISOR_PROCESS_NAME="mariadb")
    script = (
        "trap 'sleep 0.3; echo shutdown complete; exit 0' TERM; echo ready;"
        " while :; do sleep 0.05; done"
    )
    proc = subprocess.Popen(
        [sys.executable, LOGPREFIX, "sh", "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"mariadb | ready\n"
    os.killpg(proc.pid, signal.SIGTERM)
    rest, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    lines = rest.splitlines(keepends=True)  # sh may also report its killed `sleep`
    assert lines[-1] == b"mariadb | shutdown complete\n"
    assert all(line.startswith(b"mariadb | ") for line in lines)


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _healthcheck(*args: str, **env: str) -> int:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), HEALTHCHECK, *args],
        env=clean_env(**env),
        capture_output=True,
        timeout=60,
    ).returncode


def test_healthcheck_http_wants_200_and_never_uses_a_proxy() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    try:
        assert _healthcheck("--http", url) == 0
        assert _healthcheck("--http", url, http_proxy=dead_proxy, HTTP_PROXY=dead_proxy) == 0
        _Handler.status = 503
        assert _healthcheck("--http", url) == 1
    finally:
        _Handler.status = 200
        server.shutdown()
        server.server_close()
    assert _healthcheck("--http", url) == 1  # nothing listens any more


def test_healthcheck_app_asks_a_real_app_server(tmp_path: Path, mariadb: object) -> None:
    database = "healthcheck_test_db"
    port = free_port()
    secret = "s3cret-for-the-health-check-test-0123456789"
    env = clean_env(
        SHILLINGS_VAR=str(tmp_path),
        SHILLINGS_MYSQL_DSN=mariadb.dsn(database),  # type: ignore[attr-defined]
        SHILLINGS_APP_LISTEN=f"tcp:{port}:interface=127.0.0.1",
        SHILLINGS_APP_SECRET=secret,
        SHILLINGS_BCRYPT_COST="4",
    )
    app = ROOT / ".venv" / "bin" / "shillings-app"
    address = f"127.0.0.1:{port}"
    with open(tmp_path / "app.log", "w") as log:
        proc = subprocess.Popen([str(app), "serve"], env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while _healthcheck("--app", address, SHILLINGS_APP_SECRET=secret) != 0:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()
            assert time.monotonic() < deadline, "the app server never answered healthy"
            time.sleep(0.2)
        assert _healthcheck("--app", address, SHILLINGS_APP_SECRET="wrong") == 1
        assert _healthcheck("--app", address) == 1  # no handshake: refused
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        sql(mariadb.dsn("mysql"), f"DROP DATABASE IF EXISTS {database}")  # type: ignore[attr-defined]
    assert _healthcheck("--app", address, SHILLINGS_APP_SECRET=secret) == 1
