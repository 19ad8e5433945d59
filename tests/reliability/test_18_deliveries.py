"""Scenario 18, webhook deliveries: every user has an endpoint on a receiver that verifies each
delivery with the `standardwebhooks` library; clients pay and top up a few thousand times
while a delivery worker is killed with SIGKILL, then MariaDB, then the whole stack at once
(then `make start`), and `make restart` rolls every program. Every event committed must
arrive, verified, at least once, under its own id as `webhook-id`; none is lost."""

from __future__ import annotations

import random
import statistics
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.threads import deferToThread

from tests.hooks.receiver import Receiver
from tests.reliability.api import Progress, Stats, User, make_user, money
from tests.reliability.ledger import Ledger, check_invariants, summary_text
from tests.reliability.load import size
from tests.reliability.report import COLLECTOR
from tests.reliability.stack import Stack, start_stack, stop_stack
from tests.stack.crash import kill_everything
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "18. Webhook deliveries: kill -9 of a worker, MariaDB, the whole stack"
COLLECTOR.describe(SCENARIO, __doc__)
USERS = 10
CLIENTS = 8
PHASE = size(500, 100)
"""Operations answered between two faults."""
HOOKS = {
    "HOOKS_PROCS": "2",
    "SHILLINGS_WEBHOOK_ALLOW": "127.0.0.0/8",
    "SHILLINGS_HOOKS_TIMEOUT": "2",
    "SHILLINGS_HOOKS_LEASE": "3",
    "SHILLINGS_HOOKS_POLL": "0.1",
    "SHILLINGS_HOOKS_SCHEDULE": "200ms,500ms,1s,2s,2s,5s,5s,10s,10s,10s,10s",
}
"""Short lease and retries: what a killed worker had claimed is sent again within seconds."""


def register(stack: Stack, receiver: Receiver, user: User) -> None:
    """POST /v1/webhooks: the user's endpoint on the receiver, every event type."""
    name = f"u{user.user_id}"
    client = Client(stack.port, user.token)
    try:
        status, body, _ = client.call("POST", "/v1/webhooks", {"url": receiver.url(name)})
    finally:
        client.close()
    assert status == 201, body
    receiver.add(name, body["webhook"]["secret"])


def seconds_since(created_at: str, at: float) -> float:
    made = datetime.strptime(created_at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return at - made.timestamp()


@pytest_twisted.ensureDeferred
async def test_every_event_delivered_through_kills() -> None:
    stack = await deferToThread(start_stack, 2, 2, **HOOKS)
    receiver = Receiver()
    await receiver.start(reactor)
    try:
        await _scenario(stack, receiver)
    finally:
        await receiver.stop()
        await deferToThread(stop_stack, stack)


async def _scenario(stack: Stack, receiver: Receiver) -> None:
    def blocking(f: Callable[..., Any], *args: Any) -> Any:
        return deferToThread(f, *args)

    ledger, stats, progress = Ledger(), Stats(), Progress()
    users = [
        await blocking(make_user, stack.port, f"hooks{n:02d}@example.com") for n in range(USERS)
    ]
    for user in users:
        await blocking(register, stack, receiver, user)
    seed = Client(stack.port)
    for user in users:
        rec = await blocking(money, seed, ledger, stats, user, 500_000)
        assert rec.status == 200
    seed.close()

    stop = threading.Event()

    def client_loop(n: int) -> None:
        rng = random.Random(n)
        client = Client(stack.port, timeout=30)
        try:
            while not stop.is_set():
                payer, to = rng.sample(users, 2)
                amount = rng.randint(1, 500)
                target = to if rng.random() < 0.8 else None
                progress.add(money(client, ledger, stats, payer, amount, target, retry_for=180))
        finally:
            client.close()

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    hooks_pids: dict[str, int | None] = {}
    try:
        await blocking(progress.wait, PHASE, 120)
        await blocking(stack.kill9, "hooks:hooks_00")
        await blocking(progress.wait, PHASE, 120)
        await blocking(stack.kill9, "mariadb")
        await blocking(stack.wait_healthy, 90)
        await blocking(progress.wait, PHASE, 180)
        await blocking(kill_everything, stack.var, stack.env)
        started = await blocking(stack.make, "start", 180)
        assert started.returncode == 0, started.stdout + started.stderr
        await blocking(progress.wait, PHASE, 180)
        hooks_pids = {n: stack.pid_of(n) for n in ("hooks:hooks_00", "hooks:hooks_01")}
        rolled = await blocking(stack.make, "restart", 300)
        assert rolled.returncode == 0, rolled.stdout + rolled.stderr
        await blocking(progress.wait, PHASE, 180)
    finally:
        stop.set()
        await blocking(lambda: [thread.join(timeout=240) for thread in threads])
    storm_seconds = time.monotonic() - began
    assert not any(thread.is_alive() for thread in threads)
    for name, pid in hooks_pids.items():
        assert pid is not None and stack.pid_of(name) not in (None, pid), name  # rolled
    status = stack.ctl("status").stdout
    assert "hooks:hooks_00" in status and "hooks:hooks_01" in status

    ids = ", ".join(str(u.user_id) for u in users)
    rows = stack.query(f"SELECT event_id FROM events WHERE user_id IN ({ids})")
    produced = {row[0] for row in rows}
    records = progress.records
    payments = sum(1 for r in records if r.kind == "payment" and r.status == 200)
    topups = sum(1 for r in records if r.kind == "topup" and r.status == 200) + USERS
    # No event without its change, no change without its events.
    assert len(produced) == 2 * payments + topups

    def arrived() -> set[str]:
        return {g.webhook_id for e in receiver.endpoints.values() for g in e.got}

    waited = time.monotonic()
    await receiver.until(lambda: arrived() >= produced, within=300)
    drain_seconds = time.monotonic() - waited
    got = [g for e in receiver.endpoints.values() for g in e.got]
    assert receiver.bad == []
    assert all(g.webhook_id == g.event["event_id"] for g in got)
    first: dict[str, float] = {}
    for g in got:
        first.setdefault(g.webhook_id, seconds_since(g.event["created_at"], g.at))
    latencies = sorted(first[i] for i in produced)
    summary = check_invariants(stack, ledger)
    COLLECTOR.add(
        SCENARIO,
        concurrent_clients=CLIENTS,
        delivery_workers=2,
        kills=3,
        payments_made=payments,
        topups_made=topups,
        events_produced=len(produced),
        events_delivered=len(arrived() & produced),
        deliveries_received=len(got),
        duplicates=len(got) - len(arrived()),
        verification_failures=len(receiver.bad),
        events_lost=len(produced - arrived()),
        delivery_latency_p50_ms=round(statistics.median(latencies) * 1000),
        delivery_latency_p99_ms=round(latencies[int(len(latencies) * 0.99) - 1] * 1000),
        storm_seconds=round(storm_seconds, 1),
        seconds_to_deliver_the_rest_after_the_storm=round(drain_seconds, 1),
        cents_lost=summary.cents_lost,
        invariant_violations=len(summary.problems),
    )
    unexpected = sum(stats[f"http_{c}"] for c in (500, 501, 502, 504))
    COLLECTOR.count(SCENARIO, "unexpected_5xx", unexpected)
    assert not summary.problems, summary_text(summary)
    assert unexpected == 0, stats.counts
