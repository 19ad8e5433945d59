"""Baseline (c): the pay transaction of shillings_app/handlers/pay.py, one payment per
transaction (no group commit), the same SQL in the same round trips (``pay_batch_txn`` on a
``Txn`` over a multi-statement pymysql connection, as ``Database.run`` runs it, COMMIT in its
last round trip; no BEGIN, as the app sends none), run by N pymysql threads straight against
MariaDB: no Twisted, no HTTP. Beside it (c''): the pay SQL as it was before the
fewer-round-trips fix, for that fix's before/after."""

from __future__ import annotations

import random
import threading
import time
import uuid
from pathlib import Path

import pymysql
from pymysql.constants import CLIENT

from bench.wrk import Point
from shillings_app.handlers.pay import Payment, pay_batch_txn
from shillings_app.storage.database import Attempt, Txn

ER_LOCK_DEADLOCK = 1213
ER_LOCK_WAIT_TIMEOUT = 1205
OLD_SQL_CEILING = "db_pay_ceiling_7stmt"
"""The what-if (c''): the pay SQL before the fix, measured beside (c) for its before/after."""


_INSERT_PAYMENT = (
    "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email,"
    " receiver_id, receiver_email, amount, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))"
)


def _insert_payment(
    cur: pymysql.cursors.Cursor,
    sender: tuple[int, str],
    receiver: tuple[int, str],
    amount: int,
) -> None:
    cur.execute(
        _INSERT_PAYMENT,
        (str(uuid.uuid4()), "payment", sender[0], sender[1], receiver[0], receiver[1], amount),
    )


def _pay(cur: pymysql.cursors.Cursor, sender: tuple[int, str], receiver_email: str) -> None:
    """One payment of one cent without an Idempotency-Key, by the app server's own
    transaction function as a batch of one (``handlers.pay.pay_batch_txn``), COMMIT
    included: two round trips (receiver, locks and lookup; writes and COMMIT)."""
    payment = Payment(sender[0], uuid.uuid4().hex, receiver_email, 1, None)
    pay_batch_txn(Txn(cur, Attempt("pay", None)), [payment])


def _pay_7stmt(cur: pymysql.cursors.Cursor, sender: tuple[int, str], receiver_email: str) -> None:
    """The same payment in the SQL of MoneyStore.pay before the fewer-round-trips fix (commit
    07902a3), without an Idempotency-Key: revocation check, receiver lookup, two ``SELECT …
    FOR UPDATE`` in ascending id order, two UPDATEs, the INSERT. 7 statements + COMMIT (with
    a key it also looked the key up: 8). Kept for the before/after of that fix; the caller
    commits."""
    sender_id = sender[0]
    cur.execute("SELECT 1 FROM revoked_tokens WHERE jti = %s", (uuid.uuid4().hex,))
    cur.fetchone()
    cur.execute("SELECT user_id FROM users WHERE email = %s", (receiver_email,))
    receiver_id = int(cur.fetchone()[0])
    locked = {}
    for user_id in sorted((sender_id, receiver_id)):
        cur.execute("SELECT balance, email FROM users WHERE user_id = %s FOR UPDATE", (user_id,))
        row = cur.fetchone()
        locked[user_id] = (int(row[0]), row[1])
    amount = 1
    if locked[sender_id][0] < amount:
        raise RuntimeError("bench user ran out of money")
    cur.execute(
        "UPDATE users SET balance = balance - %s, updated_at = UTC_TIMESTAMP(6) WHERE user_id = %s",
        (amount, sender_id),
    )
    cur.execute(
        "UPDATE users SET balance = balance + %s, updated_at = UTC_TIMESTAMP(6) WHERE user_id = %s",
        (amount, receiver_id),
    )
    _insert_payment(
        cur, (sender_id, locked[sender_id][1]), (receiver_id, locked[receiver_id][1]), amount
    )


def load_users(users_file: Path) -> list[tuple[int, str]]:
    users = []
    for line in users_file.read_text().splitlines():
        uid, email, _ = line.split("\t")
        users.append((int(uid), email))
    return users


def run_pay_ceiling(
    socket_path: Path,
    users_file: Path,
    *,
    threads: int,
    seconds: float,
    old_sql: bool = False,
) -> Point:
    """Run payments between random users on ``threads`` connections for ``seconds``: the
    app's pay SQL, or with ``old_sql`` the SQL it ran before the fewer-round-trips fix."""
    pay = _pay_7stmt if old_sql else _pay
    users = load_users(users_file)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors = [0] * threads
    start = threading.Barrier(threads + 1)
    stop_at = [0.0]

    def worker(n: int) -> None:
        rng = random.Random(n)
        conn = pymysql.connect(
            unix_socket=str(socket_path),
            user="root",
            database="shillings",
            autocommit=False,
            client_flag=CLIENT.MULTI_STATEMENTS,
            init_command="SET time_zone = '+00:00', innodb_lock_wait_timeout = 10",
        )
        mine = latencies[n]
        try:
            start.wait()
            with conn.cursor() as cur:
                while time.monotonic() < stop_at[0]:
                    sender, receiver = rng.sample(users, 2)
                    began = time.perf_counter()
                    try:
                        pay(cur, sender, receiver[1])
                        if old_sql:
                            conn.commit()
                    except pymysql.err.OperationalError as e:
                        conn.rollback()
                        if e.args[0] not in (ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT):
                            raise
                        errors[n] += 1
                        continue
                    mine.append(time.perf_counter() - began)
        finally:
            conn.close()

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for t in workers:
        t.start()
    stop_at[0] = time.monotonic() + seconds + 30  # bounded even if the barrier is slow
    start.wait()
    began = time.monotonic()
    stop_at[0] = began + seconds
    for t in workers:
        t.join(seconds + 30)
    elapsed = time.monotonic() - began
    merged = sorted(x for per in latencies for x in per)
    done = len(merged)

    def pct(p: float) -> float:
        return round(merged[min(done - 1, int(done * p))] * 1000, 2) if done else 0.0

    return Point(
        name=OLD_SQL_CEILING if old_sql else "db_pay_ceiling",
        connections=threads,
        requests=done,
        seconds=round(elapsed, 3),
        rps=round(done / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        errors=sum(errors),
        error_detail={"lock_conflicts": sum(errors)} if sum(errors) else {},
    )
