"""Scenario 13, restarts: with one app server (the default) and two web processes, a steady
stream of GETs, keyed POSTs and unkeyed POSTs runs through `make restart` (every app and
web process, one at a time) and through `supervisorctl restart app:*`. The app server
drains what it read before exiting and tells the web processes which requests it did not
read; web processes hold requests until an app server is connected again, within each
request's deadline. No GET or keyed POST fails; an unkeyed POST may fail only with
"had no effect"; the ledger reconciles."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from tests.reliability.api import Stats, User, fmt, make_user, money
from tests.reliability.ledger import Ledger, Record, check_invariants, summary_text
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack, start_stack, stop_stack
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "13. Restarts: make restart and restart app:* under a steady stream"
COLLECTOR.describe(SCENARIO, __doc__)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    running = start_stack(web_procs=2, app_procs=1)
    try:
        yield running
    finally:
        stop_stack(running)


def _unkeyed_pay(
    client: Client, ledger: Ledger, payer: User, payee: User, amount: int
) -> tuple[int, str]:
    rec = Record(kind="payment", user_id=payer.user_id, amount=amount, receiver_id=payee.user_id)
    rec.sent = time.time()
    try:
        status, answer, _ = client.call(
            "POST",
            "/v1/pay",
            {"receiver_email": payee.email, "amount": fmt(amount)},
            {"Authorization": f"Bearer {payer.token}"},
        )
    except OSError as e:
        ledger.add(rec)
        return 0, f"{e.__class__.__name__}: {e}"
    rec.answered = time.time()
    rec.status, rec.reason = status, answer["status"].get("reason")
    if status == 200:
        rec.transaction_id = answer["transaction_id"]
    ledger.add(rec)
    return status, answer["status"]["message"]


def test_restarts_lose_no_request(stack: Stack) -> None:
    users = [make_user(stack.port, f"restart{n}@example.com") for n in range(4)]
    ledger, stats = Ledger(), Stats()
    seed = Client(stack.port)
    for user in users:
        assert money(seed, ledger, stats, user, 1_000_000).status == 200
    seed.close()

    running = threading.Event()
    running.set()
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def note(kind: str, status: int, message: str) -> None:
        with lock:
            outcomes[f"{kind}_{'ok' if status == 200 else 'failed'}"] += 1
            if status != 200:
                failures.append(f"{kind}: {status} {message}")

    def loop(kind: str, n: int) -> None:
        client = Client(stack.port, timeout=60)
        payer, payee = users[n % 4], users[(n + 1) % 4]
        reader = Client(stack.port, payer.token, timeout=60)
        try:
            while running.is_set():
                if kind == "get":
                    path = "/v1/account" if outcomes["get_ok"] % 2 else "/v1/transactions"
                    try:
                        status, answer, _ = reader.call("GET", path)
                        note(kind, status, answer["status"]["message"])
                    except OSError as e:
                        note(kind, 0, str(e))
                elif kind == "keyed":
                    rec = money(client, ledger, stats, payer, 1, payee, key=uuid.uuid4().hex)
                    note(kind, rec.status or 0, rec.reason or "")
                else:
                    note(kind, *_unkeyed_pay(client, ledger, payer, payee, 1))
        finally:
            client.close()
            reader.close()

    threads = [
        threading.Thread(target=loop, args=(kind, n))
        for n, kind in enumerate(("get", "get", "keyed", "keyed", "unkeyed", "unkeyed"))
    ]

    def wait_flowing(within: float = 60.0) -> None:
        target = {k: outcomes[f"{k}_ok"] + 5 for k in ("get", "keyed", "unkeyed")}
        deadline = time.monotonic() + within
        while any(outcomes[f"{k}_ok"] < n for k, n in target.items()):
            assert time.monotonic() < deadline, outcomes
            time.sleep(0.05)

    timings: dict[str, float] = {}

    def timed(name: str, action: Callable[[], object]) -> None:
        wait_flowing()
        began = time.monotonic()
        action()
        timings[name] = round(time.monotonic() - began, 1)

    for thread in threads:
        thread.start()
    try:
        timed("make_restart", lambda: _ok(stack.make("restart")))
        timed("restart_app", lambda: _ok(stack.ctl("restart", "app:*")))
        wait_flowing()
    finally:
        running.clear()
        for thread in threads:
            thread.join(timeout=120)

    unkeyed_failures = [f for f in failures if f.startswith("unkeyed")]
    COLLECTOR.add(
        SCENARIO,
        concurrent_clients=len(threads),
        seconds_of_make_restart=timings["make_restart"],
        seconds_of_restart_app=timings["restart_app"],
        gets_answered_200=outcomes["get_ok"],
        gets_failed=outcomes["get_failed"],
        keyed_posts_answered_200=outcomes["keyed_ok"],
        keyed_posts_failed=outcomes["keyed_failed"],
        unkeyed_posts_answered_200=outcomes["unkeyed_ok"],
        unkeyed_posts_failed_with_no_effect=sum(
            1 for f in unkeyed_failures if "had no effect" in f
        ),
        unkeyed_posts_failed_otherwise=sum(1 for f in unkeyed_failures if "had no effect" not in f),
        payments_made=outcomes["keyed_ok"] + outcomes["unkeyed_ok"],
        topups_made=len(users),
    )
    assert outcomes["get_failed"] == 0 and outcomes["keyed_failed"] == 0, failures
    assert all("had no effect" in f for f in unkeyed_failures), failures
    summary = check_invariants(stack, ledger)
    COLLECTOR.add(
        SCENARIO, cents_lost=summary.cents_lost, invariant_violations=len(summary.problems)
    )
    assert not summary.problems, summary_text(summary)


def _ok(result: object) -> None:
    returncode = getattr(result, "returncode", 0)
    assert returncode == 0, (getattr(result, "stdout", ""), getattr(result, "stderr", ""))
