"""The money transactions' round trips (docs/ARCHITECTURE.md, "Round trips"): writes and COMMIT
sent as one multi-statement query (``Txn.commit_with``), and the receivers' ids, the row locks
and the lookup as another."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pymysql
import pytest
import pytest_twisted

from shillings_app.migrations import migrate
from shillings_app.storage import Database, DatabaseUnavailable, RequestScope, money
from shillings_app.storage.database import Statement
from tests.app.helpers import sql

INSERT = "INSERT INTO scratch (k, v) VALUES (%s, %s)"


@pytest_twisted.async_yield_fixture
async def db(database: str) -> AsyncIterator[Database]:
    """A pool of one connection (every attempt runs on the same one) and a scratch table."""
    sql(database, "CREATE TABLE scratch (k INT PRIMARY KEY, v INT NOT NULL)")
    sql(database, "INSERT INTO scratch (k, v) VALUES (1, 0)")
    pool = Database(database, pool_min=1, pool_max=1)
    yield pool
    pool.close()


def _rows(dsn: str) -> list[tuple[Any, ...]]:
    return sql(dsn, "SELECT k, v FROM scratch ORDER BY k")


@pytest_twisted.ensureDeferred
async def test_a_statement_failing_mid_round_trip_leaves_nothing_and_the_connection_usable(
    db, database
):
    scope = RequestScope(None)

    def txn(cur: Any) -> None:
        cur.commit_with(
            [
                Statement("UPDATE scratch SET v = v + 5 WHERE k = 1"),
                Statement(INSERT, (2, 2)),
                Statement(INSERT, (1, 9)),  # duplicate key: MariaDB stops here
                Statement(INSERT, (3, 3)),
            ]
        )

    with pytest.raises(pymysql.err.IntegrityError):
        await db.run("scratch", txn, scope=scope)
    assert not scope.reached_commit  # COMMIT never ran: the outcome is known
    assert _rows(database) == [(1, 0)]

    def again(cur: Any) -> int:
        cur.execute("SELECT CONNECTION_ID()")
        (conn_id,) = cur.fetchone()
        cur.commit_with([Statement("UPDATE scratch SET v = v + 1 WHERE k = 1")])
        return int(conn_id)

    first = await db.run("scratch", again)
    assert await db.run("scratch", again) == first  # the same connection, in sync
    assert _rows(database) == [(1, 2)]
    assert db.retries["reconnect"] == 0


@pytest_twisted.ensureDeferred
async def test_a_duplicate_of_a_retried_statement_rolls_back_and_runs_again(db, database):
    attempts = []

    def txn(cur: Any) -> None:
        attempts.append(1)
        key = 1 if len(attempts) == 1 else 2
        cur.commit_with(
            [
                Statement("UPDATE scratch SET v = v + 5 WHERE k = 1"),
                Statement(INSERT, (key, 7), duplicate_retries=True),
            ]
        )

    await db.run("scratch", txn)
    assert len(attempts) == 2
    assert db.retries["retry_transaction"] == 1
    assert _rows(database) == [(1, 5), (2, 7)]  # the first attempt's UPDATE rolled back


@pytest_twisted.ensureDeferred
async def test_a_connection_lost_in_the_commit_round_trip_is_not_retried(db, database):
    """The connection dies just before the round trip that carries COMMIT: the app cannot
    know whether COMMIT ran, so the request is answered "outcome unknown" (reached_commit)
    and never run again."""
    scope = RequestScope(None)
    attempts = []

    def txn(cur: Any) -> None:
        attempts.append(1)
        cur.execute("SELECT CONNECTION_ID()")
        (conn_id,) = cur.fetchone()
        sql(database, f"KILL {int(conn_id)}")
        cur.commit_with([Statement("UPDATE scratch SET v = v + 5 WHERE k = 1")])

    with pytest.raises(DatabaseUnavailable):
        await db.run("scratch", txn, scope=scope)
    assert scope.reached_commit
    assert len(attempts) == 1
    assert db.retries["reconnect"] == 0
    assert _rows(database) == [(1, 0)]
    await db.run("scratch", lambda cur: cur.commit_with([Statement(INSERT, (4, 4))]))
    assert _rows(database) == [(1, 0), (4, 4)]  # a new connection replaced the dead one


@pytest_twisted.ensureDeferred
async def test_no_statement_runs_after_commit(db, database):
    def txn(cur: Any) -> None:
        cur.commit_with([Statement(INSERT, (2, 2))])
        cur.execute("UPDATE scratch SET v = 1 WHERE k = 1")

    with pytest.raises(RuntimeError, match="after COMMIT"):
        await db.run("scratch", txn)
    assert _rows(database) == [(1, 0), (2, 2)]


def test_receivers_are_locked_by_primary_key_range_and_compared_as_integers(database):
    """The receivers' ids come in session variables: the lock must still walk the primary
    key (a range of the listed ids, ascending), never scan and lock the whole table, and
    compare them as the integers they are."""
    migrate(database)
    conn = pymysql.connect(**pymysql_kwargs(database))
    try:
        with conn.cursor() as cur:
            for n in range(50):
                cur.execute(
                    "INSERT INTO users (first_name, last_name, email, phone, balance, created_at,"
                    " updated_at) VALUES ('a', 'b', %s, '1', 0, NOW(), NOW())",
                    (f"u{n}@example.com",),
                )
            cur.execute("ANALYZE TABLE users")
            cur.fetchall()
            cur.execute(f"SET @shillings_receiver_0 = ({money.RECEIVER_ID})", ("u30@example.com",))
            lock = money._lock([3], ["@shillings_receiver_0"])
            cur.execute(f"EXPLAIN {lock.sql}", lock.args)
            plans = {row[2]: (row[3], row[5]) for row in cur.fetchall()}
            # Signed like the literals beside it in the lock's IN (…): a list mixing signed
            # and unsigned values is compared as DECIMAL, ~4 x slower (money.RECEIVER_ID).
            cur.execute("CREATE TEMPORARY TABLE typed SELECT @shillings_receiver_0 AS id, 3 AS n")
            cur.execute("SHOW COLUMNS FROM typed")
            types = {row[0]: row[1] for row in cur.fetchall()}
        assert plans["users"] == ("range", "PRIMARY")
        assert "unsigned" not in types["id"] and types["id"].startswith("bigint"), types
        assert "unsigned" not in types["n"], types
    finally:
        conn.close()


def pymysql_kwargs(dsn: str) -> dict[str, Any]:
    from shillings_app.config import parse_dsn

    return {**parse_dsn(dsn), "autocommit": True}


def test_the_lookup_reads_tokens_and_keys_by_primary_key(database):
    """The batch's lookup is two statements whatever its size (``money.lock_and_lookup``):
    revoked tokens by ``jti IN (…)`` and keys by ``(user_id, idem_key) IN (…)``, each a
    primary-key range, never a scan of tables that grow with every request."""
    migrate(database)
    conn = pymysql.connect(**pymysql_kwargs(database))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO revoked_tokens (jti, user_id, expires_at, revoked_at)"
                " SELECT MD5(seq), 1, NOW(), NOW() FROM seq_1_to_2000"
            )
            cur.execute(
                "INSERT INTO idempotency_keys (user_id, idem_key, command, request_hash,"
                " created_at, transaction_id, balance, status) SELECT 1 + seq % 50, MD5(seq),"
                " 'PAY', UNHEX(SHA2(seq, 256)), NOW(), UUID(), 0, 201 FROM seq_1_to_2000"
            )
            cur.execute("ANALYZE TABLE revoked_tokens, idempotency_keys")
            cur.fetchall()
            checks = [money.Check(f"t{n}", n, f"k{n}") for n in range(1, 9)]
            plans = []
            for statement in (money._revoked(checks), money._stored(checks)):
                cur.execute(f"EXPLAIN {statement.sql}", statement.args)
                plans += [(row[2], row[3], row[5]) for row in cur.fetchall()]
        assert plans == [
            ("revoked_tokens", "range", "PRIMARY"),
            ("k", "range", "PRIMARY"),
        ], plans
    finally:
        conn.close()


def test_a_lock_without_holds_reads_none_and_refuses_to_say_what_is_available() -> None:
    """A top-up batch locks without summing holds (``held=False``): its rows carry no
    ``held``, so nothing can judge a spend on them by mistake."""
    assert "holds" not in money._lock([1, 2], held=False).sql
    assert "holds" in money._lock([1, 2]).sql
    unread = money._locked([(7, 500, "a@example.com", None)])[7]
    assert unread.read_held is None
    with pytest.raises(RuntimeError, match="holds were not read"):
        _ = unread.held
    with pytest.raises(RuntimeError, match="holds were not read"):
        _ = unread.available
    assert money._locked([(7, 500, "a@example.com", 200)])[7].available == 300
