"""Why the app server sends one statement per round trip on a Galera cluster (``Txn.one_trip``
is False there, docs/ARCHITECTURE.md "Round trips"): a transaction that a replicated write
set aborts (a brute-force, BF, abort) between the statements of one multi-statement query is
rolled back, yet the statements after the abort point still run — in a new transaction — and
its COMMIT commits them, and the client gets 1213 all the same. The abort is acted on per
client command, and a multi-statement query is one command (the same class as mysql-wsrep
issue #191, for stored procedures). Reproduced on Debian 12's MariaDB 10.11 + galera-4."""

from __future__ import annotations

import threading
import time
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from tests.cluster.cluster import Cluster


@pytest.fixture
def tables(cluster: Cluster) -> Cluster:
    cluster.query("CREATE TABLE IF NOT EXISTS test_split_a (id INT PRIMARY KEY, v INT NOT NULL)")
    cluster.query("CREATE TABLE IF NOT EXISTS test_split_b (id INT PRIMARY KEY)")
    cluster.query("REPLACE INTO test_split_a VALUES (1, 0)")
    cluster.query("DELETE FROM test_split_b")
    cluster.wait_synced()
    return cluster


def _sleeping(cluster: Cluster, node: int) -> bool:
    rows = cluster.query(
        "SELECT COUNT(*) FROM information_schema.processlist WHERE info LIKE 'DO SLEEP%%'",
        node=node,
    )
    return int(rows[0][0]) > 0


def test_a_bf_abort_inside_a_multi_statement_query_splits_its_transaction(
    tables: Cluster,
) -> None:
    """Node 2 runs ``UPDATE a; DO SLEEP; INSERT b; COMMIT`` as one query; while it sleeps
    (seen in its process list), node 1 commits a conflicting UPDATE of the same row, whose
    write set BF-aborts node 2's transaction. Node 2's UPDATE is gone, but its INSERT, run
    after the abort, was committed on its own: what one transaction wrote is half there."""
    outcome: dict[str, Any] = {}

    def run_on_node_2() -> None:
        conn = tables.connect(2, client_flag=CLIENT.MULTI_STATEMENTS)
        try:
            conn.autocommit(False)
            with conn.cursor() as cur:
                cur.execute(
                    "UPDATE test_split_a SET v = v + 1 WHERE id = 1; DO SLEEP(5);"
                    " INSERT INTO test_split_b VALUES (1); COMMIT"
                )
                while cur.nextset():
                    pass
            outcome["error"] = None
        except pymysql.err.MySQLError as e:
            outcome["error"] = e.args[0]
        finally:
            conn.close()

    worker = threading.Thread(target=run_on_node_2)
    worker.start()
    deadline = time.monotonic() + 10
    while not _sleeping(tables, 2):
        assert time.monotonic() < deadline, "node 2's query never reached its SLEEP"
        time.sleep(0.05)
    tables.query("UPDATE test_split_a SET v = v + 10 WHERE id = 1", node=1)
    worker.join(30)
    assert not worker.is_alive()
    tables.wait_synced()
    a = tables.query("SELECT v FROM test_split_a WHERE id = 1", node=1)
    b = tables.query("SELECT COUNT(*) FROM test_split_b", node=1)
    # Node 2's UPDATE was rolled back (only node 1's +10 is there) ...
    assert a == [(10,)], (a, outcome)
    # ... and its INSERT committed all the same: the transaction was split.
    assert b == [(1,)], (b, outcome)
    # ... while the client was told 1213 (deadlock), which on a single node means "rolled
    # back, nothing after the failing statement ran": a retry would apply the UPDATE again
    # beside the INSERT already committed (what make test-cluster's storm found: keys
    # committed without their ledger rows, and their replays answering 200).
    assert outcome == {"error": 1213}
