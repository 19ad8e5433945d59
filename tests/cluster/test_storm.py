"""The storm on the cluster shape: payments from concurrent clients through nginx while
one Galera node is killed with SIGKILL (and rejoins by IST), then an app server, then the
Redis primary (Sentinel promotes the replica). Every
promise must hold: sum of balances = sum of top-ups, no negative balance, no
Idempotency-Key paid twice, every answered payment in the ledger, and no balance read
after an answered payment shows a value from before it (causal reads across nodes)."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from tests.cluster import figures
from tests.cluster.cluster import Cluster
from tests.reliability.api import Stats, make_user, money
from tests.reliability.ledger import Ledger, cents, check_invariants, load_rows
from tests.stack.helpers import Client

SCENARIO = "cluster storm"
USERS = 20
CLIENTS = 12
MIN_PAYMENTS = 600
RETRY_FOR_S = 90.0


class TimeOrdered:
    """The cluster as tests/reliability/ledger.py reads it, with the ledger replayed in
    commit-time order: Galera gives each node its own auto-increment offset
    (wsrep_auto_increment_control), so ids from different nodes interleave and id order is
    not the order of commits. A user's rows are serialised (row locks on a node,
    certification across nodes: a transaction must have read the row its predecessor
    wrote), so their ``created_at`` follows their commit order."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.mysql_socket = cluster.mysql_socket

    def query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        if sql.endswith(" FROM transactions ORDER BY id"):
            sql = sql.replace("ORDER BY id", "ORDER BY created_at, id")
        return self.cluster.query(sql, args)


@dataclass
class Read:
    user_id: int
    after_tx: str
    balance: int
    answered: float


def _chaos(cluster: Cluster, done: threading.Event, log: Callable[..., None]) -> None:
    """Kill a Galera node, wait for it to rejoin; kill an app server; kill the Redis
    primary (Sentinel fails over)."""
    try:
        time.sleep(3)
        killed = time.monotonic()
        cluster.kill9("galera_2")
        log(galera_node_killed="galera_2 (app server 1's node)")
        while cluster.node_state(2) == "Synced":
            time.sleep(0.05)
        cluster.wait_synced(180)
        log(galera_kill_to_synced_seconds=round(time.monotonic() - killed, 1))
        time.sleep(3)
        old = cluster.kill9("app:app_00")
        while cluster.pid_of("app:app_00") in (None, old):
            time.sleep(0.1)
        log(app_server_killed="app_00")
        time.sleep(3)
        primary = cluster.redis_primary()
        killed = time.monotonic()
        cluster.kill9(cluster.redis_program(primary))
        while cluster.redis_primary() == primary:
            time.sleep(0.05)
        log(redis_primary_killed_failover_seconds=round(time.monotonic() - killed, 1))
        cluster.wait_web_healthy(60)
        log(redis_kill_to_all_web_healthy_seconds=round(time.monotonic() - killed, 1))
        time.sleep(3)
    finally:
        done.set()


def test_storm_with_kills(cluster: Cluster, ledger: Ledger, stats: Stats) -> None:
    with ThreadPoolExecutor(4) as pool:
        users = list(
            pool.map(lambda n: make_user(cluster.port, f"cstorm{n:02d}@example.com"), range(USERS))
        )
    seed = Client(cluster.port)
    for user in users:
        assert money(seed, ledger, stats, user, 50_00, retry_for=RETRY_FOR_S).status == 200
    seed.close()

    reads: list[Read] = []
    lock = threading.Lock()
    chaos_done = threading.Event()
    sent = [0]

    def log(**found: Any) -> None:
        figures.add(SCENARIO, **found)

    def client_loop(n: int) -> None:
        local = random.Random(n)
        client = Client(cluster.port, timeout=30)
        try:
            while True:
                with lock:
                    if sent[0] >= MIN_PAYMENTS and chaos_done.is_set():
                        return
                    sent[0] += 1
                payer, receiver = local.sample(users, 2)
                rec = money(
                    client,
                    ledger,
                    stats,
                    payer,
                    local.randint(1, 1500),
                    receiver,
                    retry_for=RETRY_FOR_S,
                )
                if rec.status == 200 and rec.transaction_id:
                    reader = Client(cluster.port, payer.token, timeout=30)
                    try:
                        status, body, _ = reader.call("GET", "/v1/account")
                    finally:
                        reader.close()
                    if status == 200:
                        with lock:
                            reads.append(
                                Read(
                                    payer.user_id,
                                    rec.transaction_id,
                                    cents(body["user"]["balance"]),
                                    time.time(),
                                )
                            )
        finally:
            client.close()

    began = time.monotonic()
    chaos = threading.Thread(target=_chaos, args=(cluster, chaos_done, log))
    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    chaos.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    chaos.join(timeout=10)
    elapsed = time.monotonic() - began
    assert not any(t.is_alive() for t in threads)

    cluster.wait_synced()
    view = TimeOrdered(cluster)
    summary = check_invariants(view, ledger)  # type: ignore[arg-type]
    sums = {
        n: cluster.query("SELECT COUNT(*), SUM(balance) FROM users", node=n)[0] for n in (1, 2, 3)
    }

    by_tx = {row.transaction_id: row for row in load_rows(view)}  # type: ignore[arg-type]
    stale = []
    for read in reads:
        if read.after_tx not in by_tx:
            continue  # a payment answered 200 without its row: in summary.problems
        after = by_tx[read.after_tx].created_at
        seen = [b for when, b in summary.timelines[read.user_id] if after <= when <= read.answered]
        if read.balance not in seen:
            stale.append(read)

    payments = [r for r in ledger.records if r.kind == "payment"]
    logs = cluster.log_text("app_00") + cluster.log_text("app_01")
    figures.add(
        SCENARIO,
        users=USERS,
        concurrent_clients=CLIENTS,
        seconds=round(elapsed, 1),
        payments_sent=len(payments),
        payments_made=sum(1 for r in payments if r.status == 200),
        refused_insufficient_funds=sum(1 for r in payments if r.status == 422),
        retried_by_clients_same_key=stats["retries"],
        unanswered=sum(1 for r in payments if r.status is None or r.status >= 500),
        certification_conflicts_retried=len(re.findall("certification conflict", logs)),
        lock_conflicts_retried=len(re.findall("lock conflict", logs)),
        balance_reads_after_pay=len(reads),
        stale_balance_reads=len(stale),
        cents_lost=summary.cents_lost,
        invariant_violations=len(summary.problems),
    )
    assert not summary.problems, "\n".join(summary.problems[:30])
    assert summary.cents_lost == 0
    assert len(set(sums.values())) == 1, sums
    assert stale == [], stale[:10]
    assert all(r.status in (200, 422) for r in payments), [
        r for r in payments if r.status not in (200, 422)
    ][:5]
    assert len(reads) > MIN_PAYMENTS // 3
