"""Galera semantics the app server relies on, on the real 3-node cluster: a conflicting
write committed on another node fails this transaction's certification at COMMIT (1213),
which the app server retries as a known outcome; causal reads see other nodes' writes."""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from shillings_app.migrations import available
from shillings_app.storage.database import (
    MAX_CONFLICT_RETRIES,
    Database,
    DatabaseUnavailable,
    RequestScope,
)
from tests.cluster.cluster import Cluster
from tests.reliability.api import make_user


@pytest.fixture
def counter(cluster: Cluster) -> Any:
    cluster.query("CREATE TABLE IF NOT EXISTS test_counter (id INT PRIMARY KEY, v INT NOT NULL)")
    cluster.query("REPLACE INTO test_counter VALUES (1, 0)")
    cluster.wait_synced()
    return cluster


def _conflicting(cluster: Cluster, attempts_to_spoil: int) -> tuple[Any, list[int]]:
    """An interaction that adds 1 on its node, and on its first ``attempts_to_spoil``
    attempts lets node 1 commit +10 to the same row before it returns (before COMMIT)."""
    attempts: list[int] = []

    def interaction(txn: Any) -> None:
        txn.execute("SELECT v FROM test_counter WHERE id = 1 FOR UPDATE")
        txn.execute("UPDATE test_counter SET v = v + 1 WHERE id = 1")
        attempts.append(1)
        if len(attempts) <= attempts_to_spoil:
            other = cluster.connect(1)
            try:
                with other.cursor() as cur:
                    cur.execute("UPDATE test_counter SET v = v + 10 WHERE id = 1")
            finally:
                other.close()

    return interaction, attempts


@pytest_twisted.ensureDeferred
async def test_certification_failure_at_commit_is_retried(counter: Cluster) -> None:
    db = Database(counter.dsn(2), pool_min=1, pool_max=1, sync_wait=1)
    scope = RequestScope(deadline=None)
    try:
        interaction, attempts = _conflicting(counter, 1)
        await db.run("conflict once", interaction, scope=scope)
    finally:
        db.close()
    assert len(attempts) == 2
    assert db.retries["certification"] == 1
    assert scope.reached_commit
    counter.wait_synced()
    assert counter.query("SELECT v FROM test_counter WHERE id = 1", node=3) == [(11,)]


@pytest_twisted.ensureDeferred
async def test_certification_failures_leave_a_known_no_effect(counter: Cluster) -> None:
    """Every attempt loses certification: the request fails, and it is known to have
    changed nothing (not "outcome unknown" although each attempt sent COMMIT)."""
    db = Database(counter.dsn(2), pool_min=1, pool_max=1, sync_wait=1)
    scope = RequestScope(deadline=None)
    try:
        interaction, attempts = _conflicting(counter, 100)
        with pytest.raises(DatabaseUnavailable):
            await db.run("always conflicts", interaction, scope=scope)
    finally:
        db.close()
    assert len(attempts) == MAX_CONFLICT_RETRIES + 1
    assert db.retries["certification"] == MAX_CONFLICT_RETRIES
    assert not scope.reached_commit
    counter.wait_synced()
    assert counter.query("SELECT v FROM test_counter WHERE id = 1", node=3) == [
        (10 * len(attempts),)
    ]


def test_causal_reads_see_the_write_of_another_node(counter: Cluster) -> None:
    """With wsrep_sync_wait=1 (what the app servers run with) a read on node 3 right after
    a commit on node 1 returns it, every time."""
    writer = counter.connect(1)
    reader = counter.connect(3, init_command="SET wsrep_sync_wait = 1")
    try:
        with writer.cursor() as w, reader.cursor() as r:
            for n in range(1, 201):
                w.execute("UPDATE test_counter SET v = %s WHERE id = 1", (n,))
                r.execute("SELECT v FROM test_counter WHERE id = 1")
                assert r.fetchone() == (n,)
    finally:
        writer.close()
        reader.close()


def test_each_app_server_works_against_its_own_node(cluster: Cluster) -> None:
    def clients(node: int) -> int:
        return len(
            cluster.query(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = 'shillings' AND id <> CONNECTION_ID()",
                node=node,
            )
        )

    deadline = time.monotonic() + 60
    n = 0
    while not (clients(1) and clients(2)):  # the pools connect on first use
        assert time.monotonic() < deadline, (clients(1), clients(2))
        make_user(cluster.port, f"own-node-{n}@example.com")
        n += 1
    # Node 3 serves the delivery workers alone (tests/cluster/test_hooks.py): no app server.
    apps = {cluster.pid_of(f"app:app_{a:02d}") for a in (0, 1)}
    assert cluster.client_pids(1) & apps == {cluster.pid_of("app:app_00")}
    assert cluster.client_pids(2) & apps == {cluster.pid_of("app:app_01")}
    assert not cluster.client_pids(3) & apps


@pytest_twisted.ensureDeferred
async def test_sessions_read_causally(cluster: Cluster) -> None:
    db = Database(cluster.dsn(3), pool_min=1, pool_max=1, sync_wait=1)
    try:
        rows = await db.run(
            "read", lambda txn: txn.execute("SELECT @@wsrep_sync_wait") and txn.fetchall()
        )
    finally:
        db.close()
    assert rows == ((1,),)


def test_migrations_ran_once_and_replicated(cluster: Cluster) -> None:
    logs = cluster.log_text("app_00") + cluster.log_text("app_01")
    assert "applied migrations" not in logs  # run once, before the app servers started
    for node in (1, 2, 3):
        versions = cluster.query("SELECT version FROM schema_migrations", node=node)
        assert [v for (v,) in versions] == [m.version for m in available()]


@pytest_twisted.ensureDeferred
async def test_a_node_cut_off_from_the_others_is_unavailable(cluster: Cluster) -> None:
    """A node outside the primary component refuses queries (1047): a 503 that had no
    effect, not a 500; it serves again once it is back."""
    db = Database(cluster.dsn(3), pool_min=1, pool_max=1, sync_wait=1)
    admin = cluster.connect(3)
    try:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'")
        deadline = time.monotonic() + 60
        while cluster.node_state(3) == "Synced" or _primary(cluster, 3):
            assert time.monotonic() < deadline
            await deferLater(reactor, 0.2)
        with pytest.raises(DatabaseUnavailable, match="WSREP"):
            await db.run("read", lambda txn: txn.execute("SELECT COUNT(*) FROM users"))
    finally:
        with admin.cursor() as cur:
            cur.execute("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'")
        admin.close()
    cluster.wait_synced()
    try:
        assert await db.run("read", lambda txn: txn.execute("SELECT 1") and txn.fetchall())
    finally:
        db.close()


def _primary(cluster: Cluster, node: int) -> bool:
    rows = cluster.query("SHOW STATUS LIKE 'wsrep_cluster_status'", node=node)
    return bool(rows) and rows[0][1] == "Primary"
