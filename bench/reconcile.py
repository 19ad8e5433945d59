"""How long ``shillings-app reconcile`` takes on a large ledger.

Starts a private MariaDB (tests/harness.py), migrates a database, generates users,
transactions (one top-up per user, then payments) and one idempotency key per transaction
(the worst case: every request sent with a key) directly in SQL, then runs the reconcile
twice (cold and warm caches) and prints the timings. The generated ledger is consistent,
so the report must be OK.

    .venv/bin/python -m bench.reconcile --transactions 1000000 --users 10000
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time

import pymysql

from shillings_app.config import parse_dsn
from shillings_app.migrations import migrate
from shillings_app.reconcile import reconcile
from shillings_proto import responses
from tests.harness import start_mariadb

PLACEHOLDER = "X" * 36
TOP_UP = 10_000_000
"""Cents each user is topped up with: more than its payments can ever take."""


def _template(kind: str) -> tuple[bytes, bytes]:
    """The stored response of a pay or top-up split around its transaction id, so SQL can
    build realistic responses (same bytes as the app server stores, fixed balances)."""
    if kind == "topup":
        message = responses.topup(transaction_id=PLACEHOLDER, balance=TOP_UP)
    else:
        message = responses.pay(
            transaction_id=PLACEHOLDER, sender_id=1, receiver_id=2, sender_balance=TOP_UP
        )
    before, _, after = message.SerializeToString().partition(PLACEHOLDER.encode())
    return before, after


def generate(dsn: str, users: int, transactions: int) -> None:
    """Users, ``transactions`` rows (``users`` top-ups, the rest payments), their balances
    and one idempotency key per row, all by INSERT … SELECT over a sequence."""
    payments = transactions - users
    conn = pymysql.connect(**parse_dsn(dsn), autocommit=True)
    with conn.cursor() as cur:
        cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        cur.execute(
            "INSERT INTO users (user_id, first_name, last_name, email, phone, balance,"
            " created_at, updated_at) SELECT seq, 'Bench', 'User', CONCAT('u', seq, '@b.test'),"
            f" '+15550000000', 0, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6) FROM seq_1_to_{users}"
        )
        cur.execute(
            "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email,"
            " receiver_id, receiver_email, amount, created_at)"
            " SELECT UUID(), 'topup', NULL, NULL, seq, CONCAT('u', seq, '@b.test'),"
            f" {TOP_UP}, UTC_TIMESTAMP(6) FROM seq_1_to_{users}"
        )
        # payment n: from user 1 + n % U to the user `offset` further on (never itself)
        cur.execute(
            "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email,"
            " receiver_id, receiver_email, amount, created_at)"
            " SELECT UUID(), 'payment', s, CONCAT('u', s, '@b.test'), r,"
            " CONCAT('u', r, '@b.test'), 1 + seq % 500, UTC_TIMESTAMP(6) FROM ("
            f"   SELECT seq, 1 + seq % {users} AS s, 1 + (seq + 1 + seq % ({users} - 1)) % {users}"
            f"   AS r FROM seq_1_to_{payments}) AS p"
        )
        cur.execute(
            "UPDATE users AS u JOIN ("
            "  SELECT user_id, SUM(net) AS net FROM ("
            "    SELECT receiver_id AS user_id, SUM(amount) AS net FROM transactions"
            "    GROUP BY receiver_id UNION ALL"
            "    SELECT sender_id, -SUM(amount) FROM transactions WHERE sender_id IS NOT NULL"
            "    GROUP BY sender_id) AS f GROUP BY user_id"
            ") AS m ON m.user_id = u.user_id SET u.balance = m.net"
        )
        (top_before, top_after), (pay_before, pay_after) = _template("topup"), _template("pay")
        cur.execute(
            "INSERT INTO idempotency_keys (user_id, idem_key, command, request_hash, response,"
            " created_at) SELECT COALESCE(sender_id, receiver_id), CONCAT('key-', id),"
            " IF(kind = 'topup', 'TPU', 'PAY'), UNHEX(SHA2(transaction_id, 256)),"
            " IF(kind = 'topup', CONCAT(%s, transaction_id, %s), CONCAT(%s, transaction_id, %s)),"
            " UTC_TIMESTAMP(6) FROM transactions",
            (top_before, top_after, pay_before, pay_after),
        )
        cur.execute("ANALYZE TABLE users, transactions, idempotency_keys")
        cur.fetchall()
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    args = parser.parse_args()
    if not 2 <= args.users <= args.transactions:
        parser.error("need 2 <= users <= transactions")
    root = tempfile.mkdtemp(prefix="shl-rec-")
    server = start_mariadb(root)
    try:
        dsn = server.dsn("shillings")
        admin = pymysql.connect(unix_socket=server.socket, user="root", autocommit=True)
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE shillings CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        admin.close()
        migrate(dsn)
        started = time.monotonic()
        generate(dsn, args.users, args.transactions)
        print(
            f"generated {args.transactions} transactions, {args.users} users and"
            f" {args.transactions} idempotency keys in {time.monotonic() - started:.1f} s"
        )
        for run in ("first", "second"):
            report = reconcile(dsn)
            print(f"--- {run} run")
            print(report.text())
            if not report.ok:
                return 1
        return 0
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
