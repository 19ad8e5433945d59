"""``shillings-app reconcile`` against a ledger written by the real app server, then broken
on purpose, one invariant at a time, directly in MariaDB."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest
import pytest_twisted

from shillings_app.config import parse_dsn
from shillings_app.reconcile import reconcile
from shillings_app.storage.reconcile import LedgerReader
from tests import protocol_requests as messages
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


@pytest_twisted.async_yield_fixture
async def ledger(app_server: Any, client: Any) -> Any:
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
    yield Ledger(
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


def test_a_ledger_written_by_the_app_server_reconciles(ledger: Ledger) -> None:
    report = reconcile(ledger.dsn)
    assert report.ok, report.text()
    assert (report.users, report.transactions, report.keys) == (3, 4, 3)
    assert report.total_balance == report.total_topups == 12_500
    assert len(report.checks) == 8 and report.problems == []

    result = run_cli(ledger.dsn)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reconcile: OK" in result.stdout
    assert result.stdout.count("\nok    ") == 8


def test_a_balance_that_drifted_from_its_transactions(ledger: Ledger) -> None:
    bob = ledger.bob.user_id
    sql(ledger.dsn, "UPDATE users SET balance = balance + 100 WHERE user_id = %s", (bob,))
    report = reconcile(ledger.dsn)
    bad = failed(report)
    assert set(bad) == {
        "balances equal the replay of their transactions",
        "sum of balances equals sum of top-ups",
    }
    replay = bad["balances equal the replay of their transactions"]
    assert (replay.count, replay.user_ids) == (1, [bob])
    assert replay.details == [f"user {bob}: balance 37.35, transactions say 36.35"]
    assert "created: 1.00" in bad["sum of balances equals sum of top-ups"].summary

    result = run_cli(ledger.dsn)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"users: {bob}\n" in result.stdout
    assert "2 check(s) failed" in result.stdout


def test_money_lost_with_its_transaction(ledger: Ledger) -> None:
    """A payment row gone: both parties' balances disagree with the replay; the key naming
    the row now names nothing; the sum still holds (the payment moved money, made none)."""
    sql(ledger.dsn, "DELETE FROM transactions WHERE transaction_id = %s", (ledger.alice_pays_bob,))
    bad = failed(reconcile(ledger.dsn))
    assert set(bad) == {
        "balances equal the replay of their transactions",
        "every idempotency key names a transaction of its user",
    }
    replay = bad["balances equal the replay of their transactions"]
    assert replay.user_ids == sorted([ledger.alice.user_id, ledger.bob.user_id])
    keys = bad["every idempotency key names a transaction of its user"]
    assert keys.user_ids == [ledger.alice.user_id] and "'a-pay-1'" in keys.details[0]
    assert "does not exist" in keys.details[0]


def test_a_negative_balance_consistent_with_its_transactions(ledger: Ledger) -> None:
    """Carol (balance 0) paid 5.00 to Alice, rows and balances agreeing: only the negative
    balance is wrong."""
    carol, alice = ledger.carol, ledger.alice
    unchecked(
        ledger.dsn,
        "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email, receiver_id,"
        " receiver_email, amount, created_at) VALUES ('00000000-0000-4000-8000-00000000c001',"
        f" 'payment', {carol.user_id}, '{carol.email}', {alice.user_id}, '{alice.email}', 500,"
        " UTC_TIMESTAMP(6))",
        f"UPDATE users SET balance = balance - 500 WHERE user_id = {carol.user_id}",
        f"UPDATE users SET balance = balance + 500 WHERE user_id = {alice.user_id}",
    )
    bad = failed(reconcile(ledger.dsn))
    assert set(bad) == {"no balance is negative"}
    negative = bad["no balance is negative"]
    assert (negative.count, negative.user_ids) == (1, [carol.user_id])
    assert negative.details == [f"user {carol.user_id}: balance -5.00"]


def test_keys_that_name_no_transaction_of_their_user(ledger: Ledger) -> None:
    alice, bob = ledger.alice.user_id, ledger.bob.user_id
    # Bob's key answered with Alice's top-up; a key whose transaction never committed. A key
    # naming no transaction at all cannot be stored any more (the column is NOT NULL).
    store_key(ledger.dsn, bob, "b-stolen", ledger.alice_topup)
    missing = "00000000-0000-4000-8000-0000000000ff"
    store_key(ledger.dsn, alice, "a-ghost", missing)
    with pytest.raises(pymysql.err.IntegrityError):
        store_key(ledger.dsn, alice, "a-empty", None)
    bad = failed(reconcile(ledger.dsn))
    assert set(bad) == {"every idempotency key names a transaction of its user"}
    keys = bad["every idempotency key names a transaction of its user"]
    assert keys.count == 2 and keys.user_ids == sorted([alice, bob])
    text = "\n".join(keys.details)
    assert f"transaction {ledger.alice_topup} was made by user {alice}" in text
    assert f"transaction {missing} does not exist" in text


def test_offenders_are_bounded_but_counted(ledger: Ledger) -> None:
    values = ",".join(
        f"('U', 'X', 'u{n}@example.com', '+15550000000', 7, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))"
        for n in range(25)
    )
    sql(
        ledger.dsn,
        "INSERT INTO users (first_name, last_name, email, phone, balance, created_at,"
        f" updated_at) VALUES {values}",
    )
    first = ledger.carol.user_id + 1
    report = reconcile(ledger.dsn, limit=20)
    replay = failed(report)["balances equal the replay of their transactions"]
    assert replay.count == 25
    assert replay.user_ids == list(range(first, first + 20))
    assert "… and 5 more" in report.text()
    assert f"{replay.name}: … and 5 more" in report.problems
    assert "created: 1.75" in report.text()


def test_key_offenders_are_bounded_but_counted(ledger: Ledger) -> None:
    bob = ledger.bob.user_id
    for n in range(4):
        store_key(ledger.dsn, bob, f"b-odd-{n}", ledger.alice_topup)
    keys = failed(reconcile(ledger.dsn, limit=3))[KEYS]
    assert keys.count == 4 and keys.user_ids == [bob] and len(keys.details) == 3
    assert f"was made by user {ledger.alice.user_id}" in keys.details[0]


@pytest_twisted.ensureDeferred
async def test_one_consistent_snapshot(ledger: Ledger) -> None:
    """What commits after the reader started is invisible to every one of its queries."""
    reader = LedgerReader(ledger.dsn)
    try:
        assert (await ledger.bob.topup(700, key="b-late")).status.code == 200
        assert reader.counts() == (3, 4, 3)
        assert reader.totals() == (12_500, 12_500)
        assert reader.replay_mismatches(20).count == 0
    finally:
        reader.close()
    assert reconcile(ledger.dsn).transactions == 5


@pytest.mark.parametrize(
    "dsn, message",
    [
        ("mysql://root@localhost/shillings?unix_socket=/nonexistent/mysqld.sock", "cannot read"),
        ("postgres://root@localhost/shillings", "configuration error"),
    ],
)
def test_cannot_connect_or_bad_config_exits_2(dsn: str, message: str) -> None:
    result = run_cli(dsn)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and result.stdout == ""


def test_an_unmigrated_database_exits_2(database: str) -> None:
    result = run_cli(database)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "doesn't exist" in result.stderr


async def _holds(client: Any, ledger: Ledger) -> tuple[str, str, str]:
    """Alice holds for Bob three times, with keys: one captured in part, one voided, one
    left held. Their ids."""
    alice, bob = ledger.alice, ledger.bob
    made = []
    for n in range(3):
        response = await client.call(
            messages.hold(alice.user_id, alice.token_id, bob.email, 1000, 0, f"a-hold-{n}")
        )
        assert response.status.code == 201
        made.append(response.hold.hold.hold_id)
    captured = await client.call(
        messages.capture(bob.user_id, bob.token_id, made[0], 400, "b-cap-0")
    )
    assert captured.status.code == 200
    voided = await client.call(messages.void(bob.user_id, bob.token_id, made[1], "b-void-1"))
    assert voided.status.code == 200
    return made[0], made[1], made[2]


@pytest_twisted.ensureDeferred
async def test_holds_written_by_the_app_server_reconcile(ledger: Ledger, client: Any) -> None:
    await _holds(client, ledger)
    report = reconcile(ledger.dsn)
    assert report.ok, report.text()
    assert report.keys == 3 + 5


@pytest_twisted.ensureDeferred
async def test_holds_over_the_balance(ledger: Ledger, client: Any) -> None:
    await _holds(client, ledger)
    carol, alice = ledger.carol, ledger.alice
    sql(
        ledger.dsn,
        "INSERT INTO holds (hold_id, payer_id, payer_email, receiver_id, receiver_email,"
        " amount, expires_at, created_at, updated_at) VALUES (UUID(), %s, %s, %s, %s, 500,"
        " UTC_TIMESTAMP(6) + INTERVAL 1 HOUR, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
        (carol.user_id, carol.email, alice.user_id, alice.email),
    )
    bad = failed(reconcile(ledger.dsn))
    assert set(bad) == {"no available balance is negative"}
    check = bad["no available balance is negative"]
    assert check.user_ids == [carol.user_id]
    assert check.details == [f"user {carol.user_id}: balance 0.00, held 5.00"]
    # An expired hold reserves nothing: the same hold past its expiry is fine.
    sql(ledger.dsn, "UPDATE holds SET expires_at = UTC_TIMESTAMP(6) WHERE payer_id = %s",
        (carol.user_id,))  # fmt: skip
    assert reconcile(ledger.dsn).ok


@pytest_twisted.ensureDeferred
async def test_holds_whose_captures_disagree(ledger: Ledger, client: Any) -> None:
    captured, voided, _ = await _holds(client, ledger)
    sql(ledger.dsn, "UPDATE holds SET captured_amount = 300 WHERE hold_id = %s", (captured,))
    # A capture of the voided hold (as if captured after voiding).
    sql(
        ledger.dsn,
        "UPDATE transactions SET hold_id = %s WHERE hold_id = %s",
        (voided, captured),
    )
    bad = failed(reconcile(ledger.dsn))
    assert set(bad) == {
        "every hold's captures agree with it",
        "every hold key names a hold of its user",
    }
    check = bad["every hold's captures agree with it"]
    assert check.count == 2 and check.user_ids == [ledger.alice.user_id]
    text = "\n".join(check.details)
    assert f"hold {captured} (captured, 10.00, captured 3.00): 0 capture(s) of 0.00" in text
    assert f"hold {voided} (voided, 10.00, captured 0.00): 1 capture(s) of 4.00" in text
    keys = bad["every hold key names a hold of its user"]
    assert keys.count == 1 and "is not a capture of hold" in keys.details[0]


@pytest_twisted.ensureDeferred
async def test_hold_keys_that_name_no_hold_of_their_user(ledger: Ledger, client: Any) -> None:
    captured, _, held = await _holds(client, ledger)
    bob, carol = ledger.bob.user_id, ledger.carol.user_id
    missing = "00000000-0000-4000-8000-0000000000ee"
    for user_id, key, command, hold_id in (
        (carol, "c-hold", "HLD", held),  # Alice's hold
        (bob, "b-void-x", "HLV", missing),
    ):
        sql(
            ledger.dsn,
            "INSERT INTO idempotency_keys (user_id, idem_key, command, request_hash,"
            " transaction_id, balance, status, hold_id, created_at)"
            " VALUES (%s, %s, %s, %s, '', 0, 200, %s, UTC_TIMESTAMP(6))",
            (user_id, key, command, b"\0" * 32, hold_id),
        )
    bad = failed(reconcile(ledger.dsn))
    assert set(bad) == {"every hold key names a hold of its user"}
    check = bad["every hold key names a hold of its user"]
    assert check.count == 2 and check.user_ids == sorted([bob, carol])
    text = "\n".join(check.details)
    assert f"hold {held} is user {ledger.alice.user_id}'s" in text
    assert f"hold {missing} does not exist" in text
    assert captured not in text


@pytest_twisted.ensureDeferred
async def test_refunds_that_do_not_add_up(ledger: Ledger) -> None:
    """Bob refunds part of Alice's payment (the ledger reconciles); then the payment's
    refunded amount drifts, goes past its amount, and a refund names a top-up."""
    bob = ledger.bob
    refund = await bob.refund(ledger.alice_pays_bob, 234)
    assert refund.status.code == 201
    report = reconcile(ledger.dsn)
    assert report.ok, report.text()

    payment = ledger.alice_pays_bob
    drift = "UPDATE transactions SET refunded_amount = 300 WHERE transaction_id = %s"
    sql(ledger.dsn, drift, (payment,))
    bad = failed(reconcile(ledger.dsn))
    assert set(bad) == {REFUNDS}
    assert (bad[REFUNDS].count, bad[REFUNDS].user_ids) == (1, [bob.user_id])
    assert bad[REFUNDS].details == [
        f"transaction {payment} to user {bob.user_id}: amount 12.34, refunded_amount 3.00,"
        " its refunds add up to 2.34"
    ]

    refund_id = refund.refund.refund.transaction_id
    unchecked(
        ledger.dsn,
        f"UPDATE transactions SET refunded_amount = 2000 WHERE transaction_id = '{payment}'",
        f"UPDATE transactions SET refund_of = '{ledger.alice_topup}'"
        f" WHERE transaction_id = '{refund_id}'",
    )
    check = failed(reconcile(ledger.dsn))[REFUNDS]
    assert check.count == 2 and check.user_ids == [bob.user_id]
    assert "refunded_amount 20.00, its refunds add up to 0.00" in check.details[0]
    assert check.details[1] == (
        f"refund {refund_id} by user {bob.user_id} of 2.34:"
        f" {ledger.alice_topup} is not a payment or capture it reverses"
    )


@pytest_twisted.ensureDeferred
async def test_a_refund_whose_original_counts_nothing_refunded(ledger: Ledger) -> None:
    refund = await ledger.bob.refund(ledger.alice_pays_bob, 100)
    sql(
        ledger.dsn,
        "UPDATE transactions SET refunded_amount = 0 WHERE transaction_id = %s",
        (ledger.alice_pays_bob,),
    )
    check = failed(reconcile(ledger.dsn))[REFUNDS]
    assert check.details == [
        f"refund {refund.refund.refund.transaction_id} by user {ledger.bob.user_id} of 1.00:"
        f" its original {ledger.alice_pays_bob} counts nothing refunded"
    ]
