"""`make status` (``cmd_status``): besides /healthz, each delivery worker's metrics endpoint
answers, as the cluster's status checks (scripts/cluster.py)."""

from __future__ import annotations

import http.server
import random
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from shillings_stack import health
from shillings_stack.config import StackConfig
from tests.stack.helpers import clean_env


class _Metrics(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def ports() -> Iterator[tuple[int, socket.socket]]:
    """A metrics port base whose hooks_01 port is held closed (bound, not listening: a
    connection is refused) and whose hooks_00 port is free."""
    for _ in range(50):
        base = random.randrange(20_000, 31_000, 100)
        held = socket.socket()
        try:
            held.bind(("127.0.0.1", base + 201))
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", base + 200))
        except OSError:
            held.close()
            continue
        yield base, held
        held.close()
        return
    pytest.fail("no free metrics ports")


def test_status_checks_every_hooks_workers_metrics(
    tmp_path: Path,
    ports: tuple[int, socket.socket],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base, held = ports
    cfg = StackConfig.from_env(
        clean_env(SHILLINGS_VAR=str(tmp_path), SHILLINGS_METRICS_PORT_BASE=str(base))
    )
    assert cfg.hooks_procs == 2
    monkeypatch.setattr(health, "supervisord_pid", lambda _cfg: 4242)
    monkeypatch.setattr(health, "print_status", lambda _cfg: None)
    monkeypatch.setattr(health, "healthz", lambda _cfg: (200, '{"status": "ok"}'))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", base + 200), _Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert health.cmd_status(cfg) == 1  # hooks_01 does not answer
        out = capsys.readouterr().out
        assert f"hooks_00 metrics (127.0.0.1:{base + 200}/metrics): 200" in out
        assert f"hooks_01 metrics (127.0.0.1:{base + 201}/metrics): unreachable" in out

        held.close()
        second = http.server.ThreadingHTTPServer(("127.0.0.1", base + 201), _Metrics)
        threading.Thread(target=second.serve_forever, daemon=True).start()
        try:
            assert health.cmd_status(cfg) == 0
            assert f"hooks_01 metrics (127.0.0.1:{base + 201}/metrics): 200" in (
                capsys.readouterr().out
            )
        finally:
            second.shutdown()
            second.server_close()
    finally:
        server.shutdown()
        server.server_close()


def test_status_without_metrics_listeners_checks_healthz_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = StackConfig.from_env(
        clean_env(SHILLINGS_VAR=str(tmp_path), SHILLINGS_METRICS_PORT_BASE="0")
    )
    monkeypatch.setattr(health, "supervisord_pid", lambda _cfg: 4242)
    monkeypatch.setattr(health, "print_status", lambda _cfg: None)
    monkeypatch.setattr(health, "healthz", lambda _cfg: (200, "ok"))
    assert health.cmd_status(cfg) == 0
    assert "hooks_00" not in capsys.readouterr().out
    monkeypatch.setattr(health, "healthz", lambda _cfg: (0, "refused"))
    assert health.cmd_status(cfg) == 1
