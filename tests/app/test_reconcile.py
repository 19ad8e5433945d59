"""``shillings-app reconcile`` against a ledger written by the real app server, then broken
on purpose, one invariant at a time, directly in MariaDB."""

from __future__ import annotations

import pymysql
import pytest
import pytest_twisted

from shillings_app.reconcile import reconcile
from shillings_app.storage.reconcile import LedgerReader
from tests.app.helpers import sql
from tests.app.reconcile_ledger import (
    KEYS,
    Ledger,
    failed,
    run_cli,
    store_key,
    unchecked,
)


def test_a_ledger_written_by_the_app_server_reconciles(ledger: Ledger) -> None:
    report = reconcile(ledger.dsn)
    assert report.ok, report.text()
    assert (report.users, report.transactions, report.keys) == (3, 4, 4)  # one a refusal
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
        assert reader.counts() == (3, 4, 4)
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
