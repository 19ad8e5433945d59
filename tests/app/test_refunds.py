"""Refunds (SPEC §6): the receiver of a payment or capture gives money back, fully or in
parts, never more than the original in total; every error reason; idempotency; a race."""

from __future__ import annotations

import json
import uuid

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from shillings_proto import shapes
from tests import protocol_requests as messages
from tests.app.helpers import Session, new_session, row_locked, sql

MAX_AMOUNT = 100_000_000
MAX_BALANCE = 10**15


def _status(response) -> tuple[int, str]:
    return response.status.code, response.status.reason


async def _paid(client, amount: int = 1_000) -> tuple[Session, Session, str]:
    """A payer who paid ``amount`` to a merchant: (payer, merchant, payment id)."""
    payer = await new_session(client, "payer")
    merchant = await new_session(client, "merchant")
    await payer.topup(10_000)
    paid = await payer.pay(merchant.email, amount)
    assert paid.status.code == 200, paid.status
    return payer, merchant, paid.pay.transaction_id


def _refunded(dsn: str, transaction_id: str) -> int:
    query = "SELECT refunded_amount FROM transactions WHERE transaction_id = %s"
    return sql(dsn, query, (transaction_id,))[0][0]


def _count(dsn: str, kind: str) -> int:
    return sql(dsn, "SELECT COUNT(*) FROM transactions WHERE kind = %s", (kind,))[0][0]


@pytest_twisted.ensureDeferred
async def test_a_full_refund_by_default_gives_everything_back(client, app_server):
    payer, merchant, payment = await _paid(client, 2_550)
    response = await merchant.refund(payment)
    assert _status(response) == (201, "") and not response.status.replayed
    refund = response.refund.refund
    assert (refund.kind, refund.sender_email, refund.receiver_email, refund.amount) == (
        "refund",
        merchant.email,
        payer.email,
        2_550,
    )
    assert refund.refund_of == payment and not refund.HasField("hold_id")
    assert not refund.HasField("refunded_amount")
    assert response.refund.balance == 0
    assert await merchant.balance() == 0
    assert await payer.balance() == 10_000
    assert _refunded(app_server.dsn, payment) == 2_550
    rows = sql(
        app_server.dsn,
        "SELECT kind, sender_id, receiver_id, amount, refund_of FROM transactions"
        " WHERE transaction_id = %s",
        (refund.transaction_id,),
    )
    assert rows == [("refund", merchant.user_id, payer.user_id, 2_550, payment)]


@pytest_twisted.ensureDeferred
async def test_the_refund_writes_its_two_events_in_its_transaction(client, app_server):
    payer, merchant, payment = await _paid(client)
    refund = (await merchant.refund(payment, 400)).refund.refund
    events = sql(
        app_server.dsn,
        "SELECT user_id, type, data, created_at FROM events WHERE type LIKE 'refund.%%'"
        " ORDER BY type DESC",
    )
    assert [(u, t) for u, t, _, _ in events] == [
        (merchant.user_id, "refund.sent"),
        (payer.user_id, "refund.received"),
    ]
    for _, _, data, _ in events:
        assert json.loads(data) == shapes.transaction_json(refund)
    assert json.loads(events[0][2])["refund_of"] == payment
    assert json.loads(events[0][2])["amount"] == "4.00"
    # A refused refund writes no event.
    assert _status(await merchant.refund(payment, 601)) == (422, "refund_exceeds_payment")
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM events WHERE type LIKE 'refund.%%'") == [(2,)]


@pytest_twisted.ensureDeferred
async def test_refunds_in_parts_never_exceed_the_original(client, app_server):
    payer, merchant, payment = await _paid(client, 1_000)
    for part, balance_after in ((300, 700), (250, 450)):
        response = await merchant.refund(payment, part)
        assert _status(response) == (201, "") and response.refund.balance == balance_after
    assert _refunded(app_server.dsn, payment) == 550
    too_much = await merchant.refund(payment, 451)
    assert _status(too_much) == (422, "refund_exceeds_payment")
    assert "4.50" in too_much.status.message
    rest = await merchant.refund(payment)  # the default: what remains
    assert _status(rest) == (201, "") and rest.refund.refund.amount == 450
    for amount in (1, 0):
        nothing_left = await merchant.refund(payment, amount)
        assert _status(nothing_left) == (422, "refund_exceeds_payment")
        assert "in full" in nothing_left.status.message
    assert _refunded(app_server.dsn, payment) == 1_000
    assert await payer.balance() == 10_000 and await merchant.balance() == 0
    assert _count(app_server.dsn, "refund") == 3


@pytest_twisted.ensureDeferred
async def test_only_the_receiver_finds_the_transaction(client, app_server):
    payer, merchant, payment = await _paid(client)
    stranger = await new_session(client, "stranger")
    await stranger.topup(5_000)
    for who, transaction_id in (
        (payer, payment),  # the sender is not the one who refunds
        (stranger, payment),
        (merchant, str(uuid.uuid4())),  # no such transaction
        (merchant, "not-a-transaction-id"),
        (merchant, payment + "x"),
    ):
        response = await who.refund(transaction_id, 100)
        assert _status(response) == (404, "transaction_not_found"), transaction_id
    assert _status(await merchant.refund("", 100)) == (400, "invalid_request")
    upper = await merchant.refund(payment.upper(), 100)  # ids are read case-insensitively
    assert _status(upper) == (201, "") and upper.refund.refund.refund_of == payment
    assert _count(app_server.dsn, "refund") == 1


@pytest_twisted.ensureDeferred
async def test_top_ups_and_refunds_are_not_refundable(client, app_server):
    payer, merchant, payment = await _paid(client)
    topup = await merchant.topup(500)
    assert _status(await merchant.refund(topup.topup.transaction_id)) == (422, "not_refundable")
    refund = await merchant.refund(payment, 100)
    # The refund's receiver is the payer: it finds it, and cannot refund it back.
    refused = await payer.refund(refund.refund.refund.transaction_id)
    assert _status(refused) == (422, "not_refundable")
    assert _status(await merchant.refund(refund.refund.refund.transaction_id)) == (
        404,
        "transaction_not_found",
    )
    assert _count(app_server.dsn, "refund") == 1


@pytest.mark.parametrize("amount", [-1, MAX_AMOUNT + 1, -(2**63)])
@pytest_twisted.ensureDeferred
async def test_invalid_amounts_are_400(client, app_server, amount):
    _, merchant, payment = await _paid(client)
    assert _status(await merchant.refund(payment, amount)) == (400, "invalid_amount")
    assert _refunded(app_server.dsn, payment) == 0


@pytest_twisted.ensureDeferred
async def test_the_refunder_spends_available_not_balance(client, app_server):
    """The merchant's balance covers the refund but a hold reserves part of it."""
    _, merchant, payment = await _paid(client, 1_000)
    other = await new_session(client, "other")
    held = await client.call(messages.hold(merchant.user_id, merchant.token_id, other.email, 700))
    assert held.status.code == 201, held.status
    assert _status(await merchant.refund(payment, 301)) == (422, "insufficient_funds")
    assert _status(await merchant.refund(payment)) == (422, "insufficient_funds")
    assert await merchant.balance() == 1_000 and _refunded(app_server.dsn, payment) == 0
    response = await merchant.refund(payment, 300)
    assert _status(response) == (201, "") and response.refund.balance == 700


@pytest_twisted.ensureDeferred
async def test_the_original_senders_balance_limit(client, app_server):
    payer, merchant, payment = await _paid(client, 1_000)
    sql(
        app_server.dsn,
        "UPDATE users SET balance = %s WHERE user_id = %s",
        (MAX_BALANCE - 100, payer.user_id),
    )
    assert _status(await merchant.refund(payment, 101)) == (422, "balance_limit")
    assert _refunded(app_server.dsn, payment) == 0 and await merchant.balance() == 1_000
    assert _status(await merchant.refund(payment, 100)) == (201, "")
    assert await payer.balance() == MAX_BALANCE


@pytest_twisted.ensureDeferred
async def test_a_capture_is_refundable_and_history_shows_the_new_fields(client, app_server):
    """The payer holds 8.00 for the merchant, who captures 5.00 of it, then refunds 2.00 of
    the capture and all of an earlier payment."""
    payer, merchant, payment = await _paid(client, 1_000)
    held = await client.call(messages.hold(payer.user_id, payer.token_id, merchant.email, 800))
    assert held.status.code == 201, held.status
    hold = held.hold.hold.hold_id
    captured = await client.call(messages.capture(merchant.user_id, merchant.token_id, hold, 500))
    assert captured.status.code == 200, captured.status
    capture = captured.capture.transaction_id
    refund = await merchant.refund(capture, 200)
    assert _status(refund) == (201, "") and refund.refund.refund.refund_of == capture
    await merchant.refund(payment, 1_000)

    rows = list((await merchant.transactions()).transactions.transactions)
    assert [t.kind for t in rows] == ["refund", "refund", "capture", "payment"]
    full, part, captured_row, paid = rows
    assert (full.refund_of, part.refund_of) == (payment, capture)
    assert not full.HasField("hold_id") and not full.HasField("refunded_amount")
    assert (captured_row.hold_id, captured_row.refunded_amount) == (hold, 200)
    assert not captured_row.HasField("refund_of")
    assert (paid.refunded_amount, paid.HasField("hold_id")) == (1_000, False)
    topup = (await payer.transactions()).transactions.transactions[-1]
    assert topup.kind == "topup"
    assert not any(topup.HasField(f) for f in ("hold_id", "refund_of", "refunded_amount"))


@pytest_twisted.ensureDeferred
async def test_idempotent_retry_refunds_once_and_replays_the_answer(client, app_server):
    payer, merchant, payment = await _paid(client, 1_000)
    first = await merchant.refund(payment, 300, key="r-1")
    again = await merchant.refund(payment.upper(), 300, key="r-1")
    assert _status(first) == _status(again) == (201, "")
    assert (first.status.replayed, again.status.replayed) == (False, True)
    assert again.refund == first.refund
    assert await merchant.balance() == 700 and _refunded(app_server.dsn, payment) == 300
    for response in (
        await merchant.refund(payment, 301, key="r-1"),
        await merchant.refund(payment, key="r-1"),  # the default is another body
        await merchant.pay(payer.email, 300, key="r-1"),
    ):
        assert _status(response) == (422, "idempotency_key_reused")
    # A refused refund is answered again under its key (SPEC §2), whatever changed since.
    assert (await merchant.pay(payer.email, 700)).status.code == 200
    refused = await merchant.refund(payment, 700, key="r-2")
    assert _status(refused) == (422, "insufficient_funds")
    await merchant.topup(700)
    assert (await merchant.refund(payment, 700, key="r-2")).status == refused.status
    other_body = await merchant.refund(payment, 701, key="r-2")
    assert _status(other_body) == (422, "idempotency_key_reused")
    assert _status(await merchant.refund(payment, 700, key="r-3")) == (201, "")
    stored = sql(
        app_server.dsn,
        "SELECT idem_key, command, status FROM idempotency_keys WHERE user_id = %s"
        " ORDER BY idem_key",
        (merchant.user_id,),
    )
    assert stored == [("r-1", "RFD", 201), ("r-2", "RFD", 422), ("r-3", "RFD", 201)]
    assert _count(app_server.dsn, "refund") == 2


async def _waiting_for_user_locks(dsn: str, count: int) -> None:
    for _ in range(300):
        waiting = sql(
            dsn,
            "SELECT COUNT(*) FROM information_schema.processlist"
            " WHERE command = 'Query' AND info LIKE 'SELECT user_id, balance%%FOR UPDATE'",
        )[0][0]
        if waiting == count:
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"{waiting} refunds waiting for the users' locks, not {count}")


@pytest_twisted.ensureDeferred
async def test_two_refunds_of_sixty_percent_racing_exactly_one_wins(connect, app_server):
    """Both refunds pass the lookup and wait on the merchant's row lock; released, one
    commits, the other reads the original's refunded amount under lock and is refused. The
    merchant can afford both, so only the original's limit can refuse."""
    first, second = await connect(), await connect()
    payer, merchant, payment = await _paid(first, 1_000)
    await merchant.topup(5_000)
    with row_locked(app_server.dsn, merchant.user_id):
        racing = [
            c.call(messages.refund(merchant.user_id, merchant.token_id, payment, 600))
            for c in (first, second)
        ]
        await _waiting_for_user_locks(app_server.dsn, 2)
    responses = await defer.gatherResults(racing)
    assert sorted(_status(r) for r in responses) == [
        (201, ""),
        (422, "refund_exceeds_payment"),
    ]
    assert _refunded(app_server.dsn, payment) == 600
    assert _count(app_server.dsn, "refund") == 1
    assert await payer.balance() == 9_000 + 600
    assert await merchant.balance() == 6_000 - 600


@pytest_twisted.ensureDeferred
async def test_keyed_duplicates_racing_past_the_key_lookup_replay_the_winner(connect, app_server):
    """Duplicates of a keyed full refund all find no key and wait on the merchant's lock;
    the first commits; the others, refused under the lock (nothing remains), find its key
    and replay its answer instead of answering 422."""
    clients = [await connect() for _ in range(3)]
    _, merchant, payment = await _paid(clients[0], 1_000)
    request = messages.refund(merchant.user_id, merchant.token_id, payment, 0, "dup")
    with row_locked(app_server.dsn, merchant.user_id):
        racing = [c.call(request) for c in clients]
        await _waiting_for_user_locks(app_server.dsn, 3)
    responses = await defer.gatherResults(racing)
    assert [_status(r) for r in responses] == [(201, "")] * 3
    assert sorted(r.status.replayed for r in responses) == [False, True, True]
    assert len({r.refund.SerializeToString() for r in responses}) == 1
    assert _count(app_server.dsn, "refund") == 1 and await merchant.balance() == 0
