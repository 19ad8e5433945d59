"""Delivery worker tests: real ``shillings-app hooks`` processes against the test database,
an in-process app server making the events, and the Klein receiver."""

from __future__ import annotations

import base64
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from shillings_app.webhooks.secrets import new_secret, seal
from tests.app.conftest import client, connect  # noqa: F401  (fixtures)
from tests.app.helpers import sql
from tests.conftest import TEST_WEBHOOK_KEY
from tests.hooks.receiver import Receiver
from tests.stack.helpers import ROOT, clean_env, free_port

SHORT = {
    "SHILLINGS_HOOKS_TIMEOUT": "1",
    "SHILLINGS_HOOKS_LEASE": "2",
    "SHILLINGS_HOOKS_SCHEDULE": "100ms,100ms,100ms,100ms",
    "SHILLINGS_HOOKS_POLL": "0.05",
    "SHILLINGS_WEBHOOK_ALLOW": "127.0.0.0/8",
}
"""Short timeout, lease and retry schedule: tests see retries and ends within seconds."""


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_port: int

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_started(self, within: float = 30.0) -> None:
        """Until the worker logged its start (or exited: then fail with its log)."""
        deadline = time.monotonic() + within
        while "delivery worker started" not in self.log_text():
            exited = self.proc.poll()
            assert exited is None, f"worker exited {exited}:\n{self.log_text()}"
            assert time.monotonic() < deadline, f"worker not started:\n{self.log_text()}"
            time.sleep(0.05)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics") as r:
            return str(r.read().decode())


@pytest.fixture
def workers(database: str, tmp_path: Path) -> Iterator[Any]:
    """A factory of delivery worker processes on ``database`` (settings: ``SHORT`` and
    overrides); each is stopped (SIGTERM) after the test."""
    started: list[Worker] = []

    def start(**overrides: str) -> Worker:
        port = free_port()
        env = clean_env(
            SHILLINGS_MYSQL_DSN=database,
            SHILLINGS_WEBHOOK_KEY=base64.b64encode(TEST_WEBHOOK_KEY).decode(),
            SHILLINGS_METRICS_LISTEN=f"tcp:{port}:interface=127.0.0.1",
            SHILLINGS_LOG_LEVEL="debug",
            **{**SHORT, **overrides},
        )
        log = tmp_path / f"hooks_{len(started):02d}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "shillings-app"), "hooks"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(proc, log, port)
        started.append(worker)
        worker.wait_started()
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.terminate()
            try:
                worker.proc.wait(20)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()


@pytest_twisted.async_yield_fixture
async def receiver():
    from twisted.internet import reactor

    server = Receiver()
    await server.start(reactor)
    yield server
    await server.stop()


def add_webhook(dsn: str, user_id: int, url: str, event_types: str = "") -> tuple[str, str]:
    """An enabled endpoint of ``user_id`` written straight into the table, as the API stores
    one (secret sealed under the test key); its webhook_id and secret."""
    webhook_id, secret = str(uuid.uuid4()), new_secret()
    sql(
        dsn,
        "INSERT INTO webhooks (webhook_id, user_id, url, event_types, secret_sealed, created_at,"
        " updated_at) VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
        (webhook_id, user_id, url, event_types, seal(secret, TEST_WEBHOOK_KEY, webhook_id)),
    )
    return webhook_id, secret


def attempts_of(dsn: str, webhook_id: str) -> list[tuple[Any, ...]]:
    """``(event_id, attempt, status_code, error)`` of every attempt to the endpoint."""
    return sql(
        dsn,
        "SELECT e.event_id, a.attempt, a.status_code, a.error FROM delivery_attempts a"
        " JOIN webhooks w ON w.id = a.webhook_id JOIN deliveries d ON d.id = a.delivery_id"
        " JOIN events e ON e.id = d.event_id WHERE w.webhook_id = %s ORDER BY a.id",
        (webhook_id,),
    )


def deliveries_of(dsn: str, webhook_id: str) -> list[tuple[Any, ...]]:
    """``(event_id, state, attempts)`` of every delivery to the endpoint."""
    return sql(
        dsn,
        "SELECT e.event_id, d.state, d.attempts FROM deliveries d"
        " JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id"
        " WHERE w.webhook_id = %s ORDER BY d.id",
        (webhook_id,),
    )
