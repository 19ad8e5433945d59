"""``shillings-app reconcile`` on holds and refunds written by the real app server, then
broken on purpose, one invariant at a time, directly in MariaDB."""

from __future__ import annotations

from typing import Any

import pytest_twisted

from shillings_app.reconcile import reconcile
from tests import protocol_requests as messages
from tests.app.helpers import sql
from tests.app.reconcile_ledger import (
    REFUNDS,
    Ledger,
    failed,
    unchecked,
)


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
    assert report.keys == 4 + 5  # the ledger's 4 (one a refusal) and the holds' 5


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
