"""Scenario 15, scaling while serving: under a steady stream of GETs and keyed pays and
top-ups, `make scale` takes the stack from 2 web x 1 app processes up to 4 x 2, down to
1 x 1, to 1 x 2 (one web process only: a second one serves while it restarts) and back to
2 x 1. Every request must be answered 200 the first time it reaches the stack: no 5xx, no
retry. The one thing a client sees is nginx closing its idle kept-alive connections when it
reloads; like any HTTP/1.1 client it then sends the request again on a new connection (the
request never reached nginx), which is counted."""

from __future__ import annotations

import http.client
import random
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.api import User, fmt, make_user
from tests.reliability.ledger import Ledger, Record, cents, check_invariants, summary_text
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack, start_stack, stop_stack
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "15. Scaling while serving: make scale up and down under traffic"
COLLECTOR.describe(SCENARIO, __doc__)
STEPS = ((4, 2), (1, 1), (1, 2), (2, 1))
STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
"""How a request sent on a kept-alive connection nginx has just closed fails."""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = start_stack(web_procs=2, app_procs=1)
    try:
        yield running
    finally:
        stop_stack(running)


@dataclass
class Traffic:
    """Clients that never retry an answered request, recording every answer."""

    port: int
    users: list[User]
    ledger: Ledger = field(default_factory=Ledger)
    stop: threading.Event = field(default_factory=threading.Event)
    answers: list[tuple[float, str, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    reconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(self, client: Client, method: str, path: str, body: Any, headers: Any) -> Any:
        """One request; sent again once on a new connection if nginx had closed the idle one."""
        try:
            return client.call(method, path, body, headers)
        except STALE:
            with self.lock:
                self.reconnects += 1
            return client.call(method, path, body, headers)  # Client.call reconnects

    def record(self, what: str, status: int, answer: Any) -> None:
        with self.lock:
            self.answers.append((time.monotonic(), what, status))
            if status != 200:
                self.failures.append(f"{what}: {status} {answer}")

    def gets(self, n: int) -> None:
        user = self.users[n]
        client = Client(self.port, user.token)
        while not self.stop.is_set():
            try:
                status, answer, _ = self.call(client, "GET", "/v1/account", None, None)
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(f"GET: {e!r}")
                client.close()
                continue
            self.record("GET", status, answer)
            time.sleep(0.005)
        client.close()

    def posts(self, n: int) -> None:
        rng = random.Random(n)
        client = Client(self.port)
        while not self.stop.is_set():
            payer, receiver = rng.sample(self.users, 2)
            pay = rng.random() < 0.7
            rec = Record(
                kind="payment" if pay else "topup",
                user_id=payer.user_id,
                amount=rng.randint(1, 300),
                receiver_id=receiver.user_id if pay else None,
                key=uuid.uuid4().hex,
            )
            body = {"amount": fmt(rec.amount)}
            if pay:
                body["receiver_email"] = receiver.email
            headers = {"Idempotency-Key": rec.key, "Authorization": f"Bearer {payer.token}"}
            rec.attempts, rec.sent = 1, time.time()
            try:
                status, answer, _ = self.call(
                    client, "POST", "/v1/pay" if pay else "/v1/topup", body, headers
                )
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(f"POST: {e!r}")
                client.close()
                self.ledger.add(rec)
                continue
            rec.status, rec.answered = status, time.time()
            rec.reason = answer.get("status", {}).get("reason")
            if status == 200:
                rec.transaction_id, rec.balance = answer["transaction_id"], cents(answer["balance"])
            self.ledger.add(rec)
            self.record("POST", status, answer)
            time.sleep(0.01)
        client.close()


def _check_shape(stack: Stack, web: int, app: int) -> None:
    """supervisord runs exactly this shape, every web process lists every app server, nginx
    knows every web process, and supervisorctl finds nothing left to update."""
    status = stack.ctl("status").stdout
    names = sorted(re.findall(r"^((?:web|app):\S+)\s+RUNNING", status, re.MULTILINE))
    assert names == sorted(
        [f"app:app_{n:02d}" for n in range(app)] + [f"web:web_{n:02d}" for n in range(web)]
    ), status
    apps = ",".join(f"unix:{stack.var}/run/app_{n:02d}.sock" for n in range(app))
    for n in range(web):
        pid = stack.pid_of(f"web:web_{n:02d}")
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert f"SHILLINGS_APP_SERVERS={apps}".encode() in environ
    nginx = (stack.var / "etc" / "nginx.conf").read_text()
    assert len(re.findall(r"^\s*server unix:\S+ max_fails=0;$", nginx, re.MULTILINE)) == web
    assert "No config updates" in stack.ctl("reread").stdout
    assert stack.web_health() == {f"web_{n:02d}": 200 for n in range(web)}


def test_scale_up_and_down_while_serving(stack: Stack) -> None:
    users = [make_user(stack.port, f"scale{n}@example.com") for n in range(4)]
    traffic = Traffic(stack.port, users)
    seed = Client(stack.port)
    for user in users:
        headers = {"Authorization": f"Bearer {user.token}", "Idempotency-Key": uuid.uuid4().hex}
        status, answer, _ = seed.call("POST", "/v1/topup", {"amount": "1000.00"}, headers)
        assert status == 200, answer
        traffic.ledger.add(
            Record("topup", user.user_id, 100_000, None, headers["Idempotency-Key"], 200, None,
                   answer["transaction_id"], cents(answer["balance"]), attempts=1)
        )  # fmt: skip
    seed.close()

    threads = [threading.Thread(target=traffic.gets, args=(n,)) for n in range(2)]
    threads += [threading.Thread(target=traffic.posts, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    windows: list[tuple[float, float]] = []
    try:
        time.sleep(1.0)
        for web, app in STEPS:
            began = time.monotonic()
            scaled = replace(stack, env={**stack.env, "WEB_PROCS": str(web), "APP_PROCS": str(app)})
            result = scaled.make("scale", timeout=180)
            windows.append((began, time.monotonic()))
            assert result.returncode == 0, result.stdout + result.stderr
            _check_shape(stack, web, app)
            time.sleep(0.5)
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)

    during = [sum(1 for t, _, _ in traffic.answers if a <= t <= b) for a, b in windows]
    summary = check_invariants(stack, traffic.ledger)
    payments = [r for r in traffic.ledger.records if r.kind == "payment" and r.status == 200]
    COLLECTOR.add(
        SCENARIO,
        scale_steps=len(STEPS),
        shapes="2x1 -> " + " -> ".join(f"{w}x{a}" for w, a in STEPS) + " (web x app)",
        seconds_per_step_max=round(max(b - a for a, b in windows), 1),
        requests_answered=len(traffic.answers),
        requests_answered_while_scaling=sum(during),
        requests_lost=len(traffic.failures),
        unexpected_5xx=sum(1 for _, _, status in traffic.answers if status >= 500),
        idle_connections_closed_by_nginx_reload=traffic.reconnects,
        payments_made=len(payments),
        topups_made=sum(1 for r in traffic.ledger.records if r.kind == "topup" and r.status == 200),
        cents_lost=summary.cents_lost,
        invariant_violations=len(summary.problems),
    )
    assert traffic.failures == []
    assert all(n > 0 for n in during), f"a scale step served no request: {during}"
    assert {what for _, what, _ in traffic.answers} == {"GET", "POST"}
    assert not summary.problems, summary_text(summary)
