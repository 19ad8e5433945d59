"""Scenario 2, crashes: under a payment storm, kill -9 an app server, then a web process,
then MariaDB itself; supervisord restarts each. Clients retry with the same
Idempotency-Key until answered. Nothing is paid twice, lost or half-done."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.api import Progress, Stats, make_user, money
from tests.reliability.ledger import Ledger, check_invariants, summary_text
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack, start_stack, stop_stack
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "2. Crash: kill -9 app server, web process, MariaDB under load"
COLLECTOR.describe(SCENARIO, __doc__)
USERS = 20
CLIENTS = 16
VICTIMS = ("app:app_00", "web:web_00", "mariadb")


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = start_stack(web_procs=2, app_procs=2)
    try:
        yield running
    finally:
        stop_stack(running)


def test_kill9_under_load_loses_nothing(stack: Stack) -> None:
    ledger, stats = Ledger(), Stats()
    rng = random.Random(5)
    with ThreadPoolExecutor(4) as pool:
        users = list(
            pool.map(lambda n: make_user(stack.port, f"crash{n:02d}@example.com"), range(USERS))
        )
    seed = Client(stack.port)
    for user in users:
        assert money(seed, ledger, stats, user, rng.randint(5000, 20000)).status == 200
    seed.close()

    stop = threading.Event()
    progress = Progress()
    records = progress.records

    def client_loop(n: int) -> None:
        local = random.Random(n)
        client = Client(stack.port, timeout=60)
        try:
            while not stop.is_set():
                payer, receiver = local.sample(users, 2)
                if local.random() < 0.05:
                    rec = money(
                        client, ledger, stats, payer, local.randint(100, 2000), retry_for=120
                    )
                else:
                    amount = local.randint(1, 3000)
                    rec = money(client, ledger, stats, payer, amount, receiver, retry_for=120)
                progress.add(rec)
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    downtime = {}
    try:
        progress.wait(200)
        for victim in VICTIMS:
            before = progress.answered()
            killed_at = time.monotonic()
            old, new = stack.kill9(victim)
            stack.wait_healthy(90)
            downtime[victim] = round(time.monotonic() - killed_at, 1)
            assert new != old
            progress.wait(100)
            assert progress.answered() > before
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
    elapsed = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads)

    unanswered = [r for r in records if r.status is None or r.status >= 500]
    outcomes = {(r.status, r.reason) for r in records}
    payments = [r for r in records if r.kind == "payment"]
    COLLECTOR.add(
        SCENARIO,
        concurrent_clients=CLIENTS,
        kills=len(downtime),
        **{
            f"seconds_until_healthy_after_killing_{v.split(':')[-1]}": s
            for v, s in downtime.items()
        },
        payments_sent=len(payments),
        payments_made=sum(1 for r in payments if r.status == 200),
        topups_made=sum(1 for r in records if r.kind == "topup" and r.status == 200) + USERS,
        requests_retried=sum(1 for r in records if r.attempts > 1),
        answers_503_then_retried=stats["http_503"],
        connection_errors_then_retried=stats["connection_errors"],
        unexpected_5xx=sum(stats[f"http_{c}"] for c in (500, 501, 502, 504)),
        unanswered_after_retries=len(unanswered),
        seconds=round(elapsed, 1),
    )
    assert unanswered == []
    assert outcomes <= {(200, None), (422, "insufficient_funds")}, outcomes
    assert sum(stats[f"http_{c}"] for c in (500, 501, 502, 504)) == 0, stats.counts
    assert sum(1 for r in records if r.attempts > 1) > 0, "no request was hit by a kill"

    summary = check_invariants(stack, ledger)
    COLLECTOR.add(
        SCENARIO, cents_lost=summary.cents_lost, invariant_violations=len(summary.problems)
    )
    assert not summary.problems, summary_text(summary)
    assert summary.payments == sum(1 for r in payments if r.status == 200)
