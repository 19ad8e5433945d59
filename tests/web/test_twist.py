"""``twist shillings-web`` / ``twist shillings-app``: the twist plugins run the same services
as the console scripts (start, serve, stop on SIGTERM)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest_twisted
from twisted.internet import reactor

from tests.polling import poll_until
from tests.web.conftest import WEB_REDIS_DB, Client
from tests.web.test_cli import Collect


class CollectSignal(Collect):
    """``twist`` ends by re-raising the signal it stopped on: record that signal."""

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value.signal or reason.value.exitCode)


TWIST = os.path.join(os.path.dirname(sys.executable), "twist")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
"""Holds ``twisted/plugins/``: on ``PYTHONPATH`` in case the editable install does not
expose it (setuptools' default editable mode maps packages only, not plugin drop-ins)."""


def twist_env(**env: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": ROOT, **env}


def test_twist_lists_both_plugins():
    out = subprocess.run(
        [TWIST, "--help"], capture_output=True, text=True, check=True, cwd="/", env=twist_env()
    ).stdout
    assert re.search(r"^\s+shillings-app\s", out, re.M), out
    assert re.search(r"^\s+shillings-web\s", out, re.M), out


def test_twist_plugin_options_are_checked():
    done = subprocess.run(
        [TWIST, "shillings-web", "--listen", "tcp:0", "--port", "1"],
        capture_output=True,
        text=True,
        cwd="/",
        env=twist_env(),
    )
    assert done.returncode != 0
    assert "exclude each other" in done.stdout + done.stderr


@pytest_twisted.ensureDeferred
async def test_twist_shillings_web_serves_and_stops_cleanly(app_server, web_redis_socket, tmp_path):
    env = twist_env(
        SHILLINGS_VAR=str(tmp_path),
        SHILLINGS_APP_SERVERS=app_server.address,
        SHILLINGS_REDIS_URL=f"unix://{web_redis_socket}?db={WEB_REDIS_DB}",
        SHILLINGS_JWT_SECRET=app_server.config.jwt_secret,
    )
    proc = CollectSignal()
    args = [TWIST, "--log-format=text", "shillings-web", "--listen", "tcp:0:interface=127.0.0.1"]
    reactor.spawnProcess(proc, TWIST, args, env=env, path=str(tmp_path))
    try:
        assert await poll_until(
            reactor, lambda: b"web listening on" in proc.output or proc.ended.called, 20.0, 0.05
        ), proc.output
        port = int(re.search(rb"web listening on 127\.0\.0\.1:(\d+)", proc.output).group(1))
        client = Client(f"http://127.0.0.1:{port}")
        answer = None
        for _ in range(50):
            answer = await client.get("/healthz")
            if answer.code == 200:
                break
            await poll_until(reactor, lambda: False, 0.1, 0.1)
        assert answer is not None and answer.code == 200, answer
    finally:
        if not proc.ended.called:
            proc.transport.signalProcess("TERM")
    ended = await proc.ended
    text = proc.output.decode()
    assert ended == signal.SIGTERM, text  # stopped by it, cleanly: the service stopped
    assert "web stopped" in text
    assert "Traceback" not in text
