"""Scenario 1, the storm: 50 users, 5,000 payments from 64 concurrent clients through
nginx, opposite payments launched together (deadlock bait) and payments that must fail."""

from __future__ import annotations

import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.reliability.api import User, make_user, money
from tests.reliability.conftest import Shared
from tests.reliability.ledger import Ledger, Record, check_invariants, wrong_refusals
from tests.reliability.load import size
from tests.reliability.report import COLLECTOR
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "1. Storm"
COLLECTOR.describe(SCENARIO, __doc__)
USERS = 50
PAYMENTS = size(5_000, 1_000)
CLIENTS = 64
IMPOSSIBLE = 90_000_000  # 900,000.00: more than all the money in the system


Job = tuple[User, User | None, int]


def _jobs(rng: random.Random, users: list[User]) -> tuple[list[Job], int]:
    """(payer, receiver, cents); receiver None is a top-up. Opposite pairs are adjacent, so
    two clients start them at the same moment."""
    jobs: list[Job] = []
    payments = pairs = 0
    while payments < PAYMENTS:
        a, b = rng.sample(users, 2)
        roll = rng.random()
        if roll < 0.3 and payments + 2 <= PAYMENTS:
            jobs += [(a, b, rng.randint(1, 4000)), (b, a, rng.randint(1, 4000))]
            payments += 2
            pairs += 1
        elif roll < 0.33:
            jobs.append((a, b, IMPOSSIBLE))
            payments += 1
        else:
            jobs.append((a, b, rng.randint(1, 4000)))
            payments += 1
        if rng.random() < 0.02:
            jobs.append((a, None, rng.randint(100, 5000)))
    return jobs, pairs


def test_storm(shared: Shared) -> None:
    stack, ledger, stats = shared.stack, shared.ledger, shared.stats
    rng = random.Random(20261125)
    with ThreadPoolExecutor(8) as pool:
        users = list(
            pool.map(lambda n: make_user(stack.port, f"storm{n:02d}@example.com"), range(USERS))
        )
    seed = Client(stack.port)
    for user in users:
        rec = money(seed, ledger, stats, user, rng.randint(2000, 10000))
        assert rec.status == 200, rec
    seed.close()

    jobs, pairs = _jobs(rng, users)
    records: list[Record] = []
    lock = threading.Lock()
    next_job = iter(jobs)

    def client_loop() -> None:
        client = Client(stack.port, timeout=60)
        try:
            while True:
                with lock:
                    job = next(next_job, None)
                if job is None:
                    return
                payer, receiver, amount = job
                rec = money(client, ledger, stats, payer, amount, receiver)
                with lock:
                    records.append(rec)
        finally:
            client.close()

    before_5xx = stats["5xx"]
    began = time.monotonic()
    threads = [threading.Thread(target=client_loop) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    elapsed = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads)

    payments = [r for r in records if r.kind == "payment"]
    paid = [r for r in payments if r.status == 200]
    refused = [r for r in payments if r.status == 422]
    impossible = [r for r in payments if r.amount == IMPOSSIBLE]
    COLLECTOR.add(
        SCENARIO,
        users=USERS,
        concurrent_clients=CLIENTS,
        payments_sent=len(payments),
        opposite_pairs_launched_together=pairs,
        impossible_payments_sent=len(impossible),
        payments_made=len(paid),
        refused_insufficient_funds=len(refused),
        topups_made=sum(1 for r in records if r.kind == "topup" and r.status == 200) + USERS,
        seconds=round(elapsed, 1),
        requests_per_second=round(len(records) / elapsed),
        unexpected_5xx=stats["5xx"] - before_5xx,
        connection_errors=stats["connection_errors"],
        lock_conflicts_retried_by_app=sum(
            len(re.findall("lock conflict", stack.log_text(f"app_{n:02d}"))) for n in range(2)
        ),
    )

    assert len(payments) == PAYMENTS
    assert stats["5xx"] == before_5xx == 0
    assert stats["connection_errors"] == 0
    assert {(r.status, r.reason) for r in records} <= {(200, None), (422, "insufficient_funds")}
    assert all(r.status == 422 for r in impossible) and len(impossible) > PAYMENTS // 100
    assert len(paid) > PAYMENTS // 2 and len(refused) > len(impossible)

    summary = shared.check(SCENARIO)
    assert summary.payments == len(paid)
    wrong = wrong_refusals(payments, summary.timelines)
    COLLECTOR.add(
        SCENARIO, refusals_checked_against_history=len(refused), wrong_refusals=len(wrong)
    )
    assert wrong == []


def test_refusal_check_catches_a_wrong_refusal(shared: Shared) -> None:
    """The history check is not vacuous: a refusal the balance could have paid is flagged."""
    summary = check_invariants(shared.stack, shared.ledger)
    user_id, timeline = next((u, t) for u, t in summary.timelines.items() if t[-1][1] > 0)
    at = timeline[-1][0] + 1
    fake = Record(
        kind="payment", user_id=user_id, amount=timeline[-1][1], reason="insufficient_funds"
    )
    fake.sent, fake.answered = at, at + 1
    assert len(wrong_refusals([fake], summary.timelines)) == 1
    fake.amount += 1
    assert wrong_refusals([fake], summary.timelines) == []


def test_invariant_check_catches_lost_and_unexplained_money(shared: Shared) -> None:
    """The reconciliation is not vacuous: an answer without its row, a row nobody asked
    for, and a key answered with two transactions are all reported."""
    real = [r for r in shared.ledger.records if r.status == 200 and r.kind == "payment"]
    assert real
    ghost = Record(
        kind="payment",
        user_id=real[0].user_id,
        amount=1,
        receiver_id=real[0].receiver_id,
        key="ghost",
        status=200,
        transaction_id="00000000-0000-0000-0000-000000000000",
    )
    twice = Record(**{**real[1].__dict__, "transaction_id": real[2].transaction_id})
    ledger = Ledger(records=[r for r in shared.ledger.records if r is not real[3]])
    ledger.records += [ghost, twice]
    problems = "\n".join(check_invariants(shared.stack, ledger).problems)
    assert "effect missing" in problems and str(ghost.transaction_id) in problems
    assert "row without a request" in problems and str(real[3].transaction_id) in problems
    assert "paid more than once" in problems
