"""Redis Sentinel: the web processes follow a failover, and a promoted replica that missed
the last writes (replication is asynchronous) cannot serve a stale profile: its epoch names
the primary that set it, so the web processes start a new epoch (with its grace period)
on the new primary, as after a restart of Redis."""

from __future__ import annotations

import http.client
import json
import time

from shillings_web.cache import gen_key
from tests.cluster import figures
from tests.cluster.cluster import Cluster
from tests.reliability.api import PASSWORD, Stats, make_user, money, token_id
from tests.reliability.ledger import Ledger, cents
from tests.stack.helpers import Client

GRACE_S = 10.0


def _account_balance(cluster: Cluster, token: str) -> int:
    client = Client(cluster.port, token)
    try:
        status, body, _ = client.call("GET", "/v1/account")
    finally:
        client.close()
    assert status == 200, body
    return cents(body["user"]["balance"])


def test_promoted_replica_missing_an_invalidation_serves_no_stale_profile(
    cluster: Cluster, ledger: Ledger, stats: Stats
) -> None:
    payer = make_user(cluster.port, "sentinel-payer@example.com")
    payee = make_user(cluster.port, "sentinel-payee@example.com")
    seed = Client(cluster.port)
    assert money(seed, ledger, stats, payer, 100_00, retry_for=30).status == 200
    seed.close()

    primary = cluster.redis_primary()
    entry_key = f"shl:prof:{token_id(payer.token)}"
    # Read until the profile is cached (fills happen only once the epoch's grace is over).
    deadline = time.monotonic() + 60
    while not cluster.redis(primary, "GET", entry_key):
        assert time.monotonic() < deadline, "the profile was never cached"
        assert _account_balance(cluster, payer.token) == 100_00
        time.sleep(0.5)
    gen = gen_key(payer.email)
    before = {k: cluster.redis(primary, "GET", k) for k in (entry_key, gen, "shl:epoch")}

    client = Client(cluster.port)
    assert money(client, ledger, stats, payer, 30_00, payee, retry_for=30).status == 200
    client.close()
    assert cluster.redis(primary, "GET", gen) == ""  # invalidated on the primary

    killed = time.monotonic()
    cluster.kill9(cluster.redis_program(primary))
    while cluster.redis_primary() == primary:
        assert time.monotonic() - killed < 60, "Sentinel did not fail over"
        time.sleep(0.1)
    promoted = cluster.redis_primary()
    # What a replica that missed the invalidation holds: the entry, its generation and the
    # epoch as they were before the payment.
    for key, value in before.items():
        assert cluster.redis(promoted, "SET", key, value) == "OK"
    healthy = cluster.wait_web_healthy() + time.monotonic() - killed
    figures.add("redis failover", kill_to_all_web_healthy_seconds=round(healthy, 1))

    reads = 0
    end = time.monotonic() + GRACE_S + 3
    while time.monotonic() < end:
        assert _account_balance(cluster, payer.token) == 70_00
        reads += 1
        time.sleep(0.1)
    epoch = cluster.redis(promoted, "GET", "shl:epoch")
    assert epoch != before["shl:epoch"] and f"@127.0.0.1/{promoted}:" in epoch
    figures.add("redis failover", fresh_reads_after_failover=reads, stale_reads=0)


def _login(cluster: Cluster, email: str, password: str) -> int:
    """POST /v1/login from 127.0.0.2 (its own client address: the limit counts failures
    per address too, and the other tests log in from 127.0.0.1)."""
    conn = http.client.HTTPConnection(
        "127.0.0.1", cluster.port, timeout=30, source_address=("127.0.0.2", 0)
    )
    try:
        body = json.dumps({"email": email, "password": password})
        conn.request("POST", "/v1/login", body, {"Content-Type": "application/json"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_login_limit_holds_across_a_failover(cluster: Cluster) -> None:
    """Failures recorded before the primary dies still count on the promoted replica (a
    Redis without a replica would have restarted empty and forgotten them)."""
    user = make_user(cluster.port, "limited@example.com")
    assert [_login(cluster, user.email, "wrong-password-1") for _ in range(10)] == [401] * 10
    assert _login(cluster, user.email, PASSWORD) == 429
    primary = cluster.redis_primary()
    cluster.kill9(cluster.redis_program(primary))
    deadline = time.monotonic() + 60
    while cluster.redis_primary() == primary:
        assert time.monotonic() < deadline, "Sentinel did not fail over"
        time.sleep(0.1)
    cluster.wait_web_healthy()
    assert _login(cluster, user.email, PASSWORD) == 429
