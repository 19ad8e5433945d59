"""nginx's own 503 (no web process reachable) says the outcome is unknown exactly for the
POSTs that move or reserve money, as the web processes' 503 does (``errors.MONEY_PATHS``):
the rendered nginx.conf, run by nginx alone with every web socket absent."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shillings_stack.config import StackConfig, find_binary
from shillings_stack.render import render
from tests.stack.helpers import clean_env, free_port, raw_exchange

pytestmark = pytest.mark.stack

HOLD = "5b0c6a1e-0000-4000-8000-000000000001"
UNKNOWN = "the outcome is unknown: retry with the same Idempotency-Key"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    var = Path(tempfile.mkdtemp(prefix="shl-n503-"))
    port = free_port()
    cfg = StackConfig.from_env(clean_env(SHILLINGS_VAR=str(var), SHILLINGS_HTTP_PORT=str(port)))
    render(cfg)
    nginx = subprocess.Popen(
        [find_binary("nginx"), "-p", f"{var}/nginx", "-c", f"{var}/etc/nginx.conf", "-e", "stderr"],
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_listening(port, nginx)
        yield port
    finally:
        nginx.terminate()
        nginx.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)


def _wait_listening(port: int, nginx: subprocess.Popen[bytes]) -> None:
    """Until nginx accepts connections on ``port`` (15 s at most; fails if nginx exits)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert nginx.poll() is None, "nginx exited"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx did not listen")


def _post(port: int, path: str) -> str:
    body = b"{}"
    request = (
        f"POST {path} HTTP/1.1\r\nHost: s\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    answer = raw_exchange(port, request)
    assert (answer.status, answer.json()["status"]["reason"]) == (503, "unavailable")
    message: str = answer.json()["status"]["message"]
    return message


@pytest.mark.parametrize(
    "path",
    [
        "/v1/pay",
        "/v1/topup",
        "/v1/refunds",
        "/v1/holds",
        f"/v1/holds/{HOLD}/capture",
        f"/v1/holds/{HOLD}/void",
        "/v1/refunds?x=1",
    ],
)
def test_money_posts_have_an_unknown_outcome(port: int, path: str) -> None:
    assert UNKNOWN in _post(port, path)


@pytest.mark.parametrize(
    "path", ["/v1/login", "/v1/webhooks", "/v1/holdsx", f"/v1/holds/{HOLD}/capturex"]
)
def test_other_posts_are_to_be_tried_again(port: int, path: str) -> None:
    message = _post(port, path)
    assert "try again" in message and "Idempotency" not in message
