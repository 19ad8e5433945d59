"""What the reconcile tests share: a ledger written by the real app server (``write_ledger``)
and the ways they break it directly in MariaDB or run the CLI on it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pymysql

from shillings_app.config import parse_dsn
from tests.app.helpers import Session, new_session, sql

KEYS = "every idempotency key names a transaction of its user"
REFUNDS = "refunds add up to each payment's refunded amount, never above it"
CHECKS_OFF = "SET SESSION check_constraint_checks = 0"
"""Lets a test store what the schema's CHECK constraints forbid (a negative balance)."""


@dataclass
class Ledger:
    dsn: str
    alice: Session
    bob: Session
    carol: Session  # signed up, never topped up: balance 0
    alice_topup: str  # transaction ids
    alice_pays_bob: str


async def write_ledger(app_server: Any, client: Any) -> Ledger:
    """Three users; top-ups and payments with and without keys, a replayed retry, a refusal."""
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    carol = await new_session(client, "carol")
    topup = await alice.topup(10_000, key="a-top-1")
    assert topup.status.code == 200
    assert (await alice.topup(10_000, key="a-top-1")).topup.transaction_id == (
        topup.topup.transaction_id
    )
    assert (await bob.topup(2_500)).status.code == 200
    paid = await alice.pay(bob.email, 1_234, key="a-pay-1")
    assert paid.status.code == 200
    assert (await bob.pay(alice.email, 99, key="b-pay-1")).status.code == 200
    assert (await carol.pay(alice.email, 1, key="c-pay-1")).status.reason == "insufficient_funds"
    return Ledger(
        app_server.config.mysql_dsn,
        alice,
        bob,
        carol,
        topup.topup.transaction_id,
        paid.pay.transaction_id,
    )


def run_cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHILLINGS_")}
    env["SHILLINGS_MYSQL_DSN"] = dsn
    code = "import sys; from shillings_app.cli import main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, "reconcile", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def unchecked(dsn: str, *statements: str) -> None:
    """Run ``statements`` in one session with CHECK constraints off."""
    conn = pymysql.connect(**parse_dsn(dsn), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(CHECKS_OFF)
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def failed(report: Any) -> dict[str, Any]:
    return {check.name: check for check in report.checks if not check.ok}


def store_key(dsn: str, user_id: int, key: str, transaction_id: str | None) -> None:
    sql(
        dsn,
        "INSERT INTO idempotency_keys (user_id, idem_key, command, request_hash,"
        " transaction_id, balance, status, created_at)"
        " VALUES (%s, %s, 'TPU', %s, %s, 1, 200, UTC_TIMESTAMP(6))",
        (user_id, key, b"\0" * 32, transaction_id),
    )
