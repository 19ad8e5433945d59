"""How long ``shillings-app reconcile`` takes on a large ledger.

Starts a private MariaDB (tests/harness.py), migrates a database, generates users,
transactions (one top-up per user, then payments) and one idempotency key per transaction
(the worst case: every request sent with a key) directly in SQL, then runs the reconcile
three times (the harness's 64 MiB InnoDB buffer pool, then a buffer pool that holds the
tables: first and second run) and prints the reports with their timings. The generated
ledger is consistent, so every report must be OK. Run it alone: it takes a few minutes.

    .venv/bin/python -m bench.reconcile --transactions 1000000 --users 10000
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pymysql

from shillings_app.config import parse_dsn
from shillings_app.migrations import migrate
from shillings_app.reconcile import reconcile
from tests.harness import start_mariadb

TOP_UP = 10_000_000
"""Cents each user is topped up with: more than its payments can ever take."""


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
        cur.execute(
            "INSERT INTO idempotency_keys (user_id, idem_key, command, request_hash,"
            " transaction_id, balance, status, created_at)"
            " SELECT COALESCE(sender_id, receiver_id), CONCAT('key-', id),"
            " IF(kind = 'topup', 'TPU', 'PAY'), UNHEX(SHA2(transaction_id, 256)),"
            f" transaction_id, {TOP_UP}, 200, UTC_TIMESTAMP(6) FROM transactions"
        )
        cur.execute("ANALYZE TABLE users, transactions, idempotency_keys")
        cur.fetchall()
    conn.close()


OUTPUT = Path(__file__).with_name("RECONCILE.md")


class Log:
    """Prints each line and keeps it for bench/RECONCILE.md."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, text: str) -> None:
        print(text, flush=True)
        self.lines.append(text)

    def write(self, args: argparse.Namespace, seconds: float) -> None:
        head = [
            "# `shillings-app reconcile` on a generated ledger",
            "",
            "Written by `make bench-reconcile` (`python -m bench.reconcile`"
            f" --transactions {args.transactions} --users {args.users}); run it again rather"
            " than editing the figures. The machine is shared, so they are noisy.",
            "",
            f"Run {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, took {seconds:.0f} s;"
            f" {os.cpu_count()} CPUs, load average at the end"
            f" {' '.join(f'{v:.2f}' for v in os.getloadavg())}.",
            "",
            "```",
        ]
        OUTPUT.write_text("\n".join([*head, *self.lines, "```", ""]))


def _run(dsn: str, label: str, log: Log) -> bool:
    report = reconcile(dsn)
    log(f"--- {label}")
    log(report.text())
    return report.ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transactions", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--buffer-pool-mib", type=int, default=1024)
    args = parser.parse_args()
    if not 2 <= args.users <= args.transactions:
        parser.error("need 2 <= users <= transactions")
    log, begun = Log(), time.monotonic()
    root = tempfile.mkdtemp(prefix="shl-rec-")
    server = start_mariadb(root)
    try:
        dsn = server.dsn("shillings")
        admin = pymysql.connect(unix_socket=server.socket, user="root", autocommit=True)
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE shillings CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        migrate(dsn)
        started = time.monotonic()
        generate(dsn, args.users, args.transactions)
        log(
            f"generated {args.transactions} transactions, {args.users} users and"
            f" {args.transactions} idempotency keys in {time.monotonic() - started:.1f} s"
        )
        with admin.cursor() as cur:
            cur.execute(
                "SELECT table_name, ROUND((data_length + index_length) / 1048576)"
                " FROM information_schema.tables WHERE table_schema = 'shillings'"
                " AND table_name IN ('transactions', 'idempotency_keys')"
            )
            sizes = {name: int(mib) for name, mib in cur.fetchall()}
            log(f"table MiB (data + indexes): {sizes}")
        ok = _run(
            dsn, "InnoDB buffer pool 64 MiB (the test harness's), smaller than the tables", log
        )
        with admin.cursor() as cur:
            cur.execute(f"SET GLOBAL innodb_buffer_pool_size = {args.buffer_pool_mib} * 1048576")
        time.sleep(2)  # the resize runs in the background
        ok = _run(dsn, f"buffer pool {args.buffer_pool_mib} MiB, first run", log) and ok
        ok = _run(dsn, f"buffer pool {args.buffer_pool_mib} MiB, second run (warm)", log) and ok
        admin.close()
        log.write(args, time.monotonic() - begun)
        return 0 if ok else 1
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
