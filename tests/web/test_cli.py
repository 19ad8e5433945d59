"""The ``shillings-web`` console script: serves, logs one line per request, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import sys

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol

from tests.polling import poll_until
from tests.web.conftest import WEB_REDIS_DB, Client


class Collect(ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""
        self.ended: defer.Deferred[int] = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value.exitCode)


@pytest_twisted.ensureDeferred
async def test_console_script_serves_and_stops_cleanly(app_server, web_redis_socket, tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "shillings-web")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SHILLINGS_VAR": str(tmp_path),
        "SHILLINGS_APP_SERVERS": app_server.address,
        "SHILLINGS_REDIS_URL": f"unix://{web_redis_socket}?db={WEB_REDIS_DB}",
        "SHILLINGS_JWT_SECRET": app_server.config.jwt_secret,
    }
    proc = Collect()
    reactor.spawnProcess(proc, script, [script, "--listen", "tcp:0:interface=127.0.0.1"], env=env)
    try:
        assert await poll_until(
            reactor, lambda: b"web listening on" in proc.output or proc.ended.called, 20.0, 0.05
        ), proc.output
        port = int(re.search(rb"web listening on 127\.0\.0\.1:(\d+)", proc.output).group(1))
        client = Client(f"http://127.0.0.1:{port}")
        answer = None
        for _ in range(50):
            answer = await client.get("/healthz", headers={"X-Request-Id": "cli-test"})
            if answer.code == 200:
                break
            await poll_until(reactor, lambda: False, 0.1, 0.1)
        assert answer is not None and answer.code == 200, answer
    finally:
        if not proc.ended.called:
            proc.transport.signalProcess("TERM")
    exit_code = await proc.ended
    text = proc.output.decode()
    assert exit_code == 0, text
    assert re.search(r"GET /healthz 200 [0-9.]+ms rid=cli-test user=-", text), text
    assert "web stopped" in text
    assert "Traceback" not in text
    # No per-request access log in Twisted's combined format.
    assert '"GET /healthz HTTP/1.1"' not in text
