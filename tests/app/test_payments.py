"""Top-ups and payments: success, every error reason, idempotency."""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from shillings_proto.framing import RequestTimeoutError
from tests import protocol_requests as messages
from tests.app.helpers import new_email, new_session, row_locked, sql

MAX_AMOUNT = 100_000_000
MAX_BALANCE = 10**15


def _status(response) -> tuple[int, str]:
    return response.status.code, response.status.reason


def _transaction_count(dsn: str) -> int:
    return sql(dsn, "SELECT COUNT(*) FROM transactions")[0][0]


@pytest_twisted.ensureDeferred
async def test_topup_adds_to_balance_and_records_a_topup(client, app_server):
    session = await new_session(client)
    first = await session.topup(1250)
    second = await session.topup(MAX_AMOUNT)
    assert _status(first) == (200, "") and first.topup.balance == 1250
    assert second.topup.balance == 1250 + MAX_AMOUNT
    assert first.topup.transaction_id != second.topup.transaction_id
    assert await session.balance() == 1250 + MAX_AMOUNT
    rows = sql(
        app_server.dsn,
        "SELECT kind, sender_id, sender_email, receiver_id, amount FROM transactions"
        " WHERE transaction_id = %s",
        (first.topup.transaction_id,),
    )
    assert rows == [("topup", None, None, session.user_id, 1250)]


@pytest.mark.parametrize("amount", [0, -1, MAX_AMOUNT + 1, -(2**63)])
@pytest_twisted.ensureDeferred
async def test_invalid_amounts_are_400_and_move_nothing(client, app_server, amount):
    payer = await new_session(client)
    payee = await new_session(client)
    await payer.topup(1000)
    assert _status(await payer.topup(amount)) == (400, "invalid_amount")
    assert _status(await payer.pay(payee.email, amount)) == (400, "invalid_amount")
    assert await payer.balance() == 1000
    assert await payee.balance() == 0
    assert _transaction_count(app_server.dsn) == 1


@pytest_twisted.ensureDeferred
async def test_topup_over_balance_limit_is_422(client, app_server):
    session = await new_session(client)
    sql(
        app_server.dsn,
        "UPDATE users SET balance = %s WHERE user_id = %s",
        (MAX_BALANCE - 100, session.user_id),
    )
    assert _status(await session.topup(101)) == (422, "balance_limit")
    response = await session.topup(100)
    assert response.status.code == 200 and response.topup.balance == MAX_BALANCE


@pytest_twisted.ensureDeferred
async def test_pay_moves_money_and_records_a_payment(client, app_server):
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    await payer.topup(10_000)
    response = await payer.pay(payee.email.upper(), 2_550)
    assert _status(response) == (200, "")
    # The answer names the transaction and the payer's balance; who is who is in the row.
    assert [f.name for f, _ in response.pay.ListFields()] == ["transaction_id", "sender_balance"]
    assert response.pay.sender_balance == 7_450
    assert await payer.balance() == 7_450
    assert await payee.balance() == 2_550
    rows = sql(
        app_server.dsn,
        "SELECT kind, sender_id, sender_email, receiver_id, receiver_email, amount"
        " FROM transactions WHERE transaction_id = %s",
        (response.pay.transaction_id,),
    )
    assert rows == [("payment", payer.user_id, payer.email, payee.user_id, payee.email, 2_550)]


@pytest_twisted.ensureDeferred
async def test_pay_errors(client, app_server):
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    await payer.topup(1_000)
    assert _status(await payer.pay(new_email("ghost"), 100)) == (404, "receiver_not_found")
    assert _status(await payer.pay(payer.email, 100)) == (422, "self_payment")
    assert _status(await payer.pay(payee.email, 1_001)) == (422, "insufficient_funds")
    assert _status(await payer.pay("", 100)) == (400, "invalid_request")
    assert _status(await payer.pay("not-an-email", 100)) == (400, "invalid_request")
    sql(
        app_server.dsn,
        "UPDATE users SET balance = %s WHERE user_id = %s",
        (MAX_BALANCE - 10, payee.user_id),
    )
    assert _status(await payer.pay(payee.email, 11)) == (422, "balance_limit")
    assert await payer.balance() == 1_000
    assert _transaction_count(app_server.dsn) == 1
    exact = await payer.pay(payee.email, 10)
    assert exact.status.code == 200 and exact.pay.sender_balance == 990


@pytest_twisted.ensureDeferred
async def test_idempotent_retry_moves_money_once_and_replays_the_response(client, app_server):
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    await payer.topup(5_000, key="topup-1")
    replayed_topup = await payer.topup(5_000, key="topup-1")
    assert replayed_topup.topup.balance == 5_000
    first = await payer.pay(payee.email, 700, key="pay-1")
    retry = await payer.pay(payee.email.upper(), 700, key="pay-1")
    assert _status(first) == _status(retry) == (200, "")
    assert retry.pay == first.pay
    assert await payer.balance() == 4_300
    assert await payee.balance() == 700
    assert _transaction_count(app_server.dsn) == 2
    stored = sql(
        app_server.dsn,
        "SELECT idem_key, command FROM idempotency_keys WHERE user_id = %s ORDER BY idem_key",
        (payer.user_id,),
    )
    assert stored == [("pay-1", "PAY"), ("topup-1", "TPU")]


@pytest_twisted.ensureDeferred
async def test_same_key_with_a_different_request_is_422(client):
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    other = await new_session(client, "other")
    await payer.topup(5_000)
    assert (await payer.pay(payee.email, 100, key="k")).status.code == 200
    for response in (
        await payer.pay(payee.email, 101, key="k"),
        await payer.pay(other.email, 100, key="k"),
        await payer.topup(100, key="k"),
    ):
        assert _status(response) == (422, "idempotency_key_reused")
    assert await payer.balance() == 4_900
    # Keys are per user: another user may use the same key for its own request.
    await other.topup(300)
    assert (await other.pay(payee.email, 300, key="k")).status.code == 200
    assert await payee.balance() == 400


@pytest_twisted.ensureDeferred
async def test_a_refused_request_is_answered_again_under_its_key(client):
    """SPEC §2: a retry with the same key and body gets the same response, a refusal too,
    whatever changed since; a new key is judged on the data as it is."""
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    assert _status(await payer.pay(payee.email, 500, key="k1")) == (422, "insufficient_funds")
    await payer.topup(500)
    again = await payer.pay(payee.email, 500, key="k1")
    assert (again.status.code, again.status.reason) == (422, "insufficient_funds")
    assert again.status.message == "insufficient funds"
    assert await payee.balance() == 0
    assert _status(await payer.pay(payee.email, 501, key="k1")) == (422, "idempotency_key_reused")
    assert (await payer.pay(payee.email, 500, key="k2")).status.code == 200
    assert await payee.balance() == 500


@pytest.mark.parametrize("key", ["tab\tkey", "x" * 256, "é"])
@pytest_twisted.ensureDeferred
async def test_malformed_idempotency_key_is_400(client, key):
    session = await new_session(client)
    assert _status(await session.topup(100, key=key)) == (400, "invalid_request")
    assert await session.balance() == 0


@pytest_twisted.ensureDeferred
async def test_concurrent_duplicates_of_one_key_move_money_once(connect, app_server):
    clients = [await connect() for _ in range(8)]
    payer = await new_session(clients[0], "payer")
    payee = await new_session(clients[0], "payee")
    await payer.topup(10_000)
    requests = [
        c.call(messages.pay(payer.user_id, payer.token_id, payee.email, 1_234, "dup"))
        for c in clients
        for _ in range(3)
    ]
    responses = await defer.gatherResults(requests)
    assert {_status(r) for r in responses} == {(200, "")}
    assert len({r.pay.transaction_id for r in responses}) == 1
    assert await payer.balance() == 10_000 - 1_234
    assert await payee.balance() == 1_234
    assert _transaction_count(app_server.dsn) == 2


@pytest_twisted.ensureDeferred
async def test_duplicates_racing_past_the_key_lookup_move_money_once(connect, app_server):
    """Duplicates that all wait on the payer's row lock: the first commits; the others' lookup
    runs after their lock is granted (same round trip, after the lock), so it finds the
    first's key and replays the stored response with no duplicate-key retry."""
    client = await connect()
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    await payer.topup(10_000)
    with row_locked(app_server.dsn, payer.user_id):
        requests = [
            client.call(messages.pay(payer.user_id, payer.token_id, payee.email, 300, "race"))
            for _ in range(4)
        ]
        for _ in range(200):
            waiting = sql(
                app_server.dsn,
                "SELECT COUNT(*) FROM information_schema.processlist"
                " WHERE command = 'Query' AND info LIKE 'SELECT user_id, balance%%FOR UPDATE'",
            )[0][0]
            if waiting == 4:
                break
            await deferLater(reactor, 0.01, lambda: None)
        assert waiting == 4
    responses = await defer.gatherResults(requests)
    assert {_status(r) for r in responses} == {(200, "")}
    assert len({r.pay.transaction_id for r in responses}) == 1
    assert app_server.db.retries["retry_transaction"] == 0
    assert await payer.balance() == 10_000 - 300
    assert _transaction_count(app_server.dsn) == 2


@pytest_twisted.ensureDeferred
async def test_a_payment_the_client_gave_up_on_never_takes_effect_later(client, app_server):
    """The client waits 1 s; the receiver's row stays locked for 1.6 s. The server may not
    commit past the request's deadline, so the late payment rolls back, and the client's
    retry with the same key moves the money exactly once."""
    payer = await new_session(client, "payer")
    payee = await new_session(client, "payee")
    await payer.topup(10_000)
    with row_locked(app_server.dsn, payee.user_id):
        late = client.call(
            messages.pay(payer.user_id, payer.token_id, payee.email, 700, "late"), timeout=1.0
        )
        with pytest.raises(RequestTimeoutError):
            await late
        await deferLater(reactor, 0.6, lambda: None)
    for _ in range(300):
        if app_server.factory.in_flight == 0:
            break
        await deferLater(reactor, 0.01, lambda: None)
    assert app_server.factory.in_flight == 0
    assert await payer.balance() == 10_000
    assert await payee.balance() == 0
    assert _transaction_count(app_server.dsn) == 1

    retry = await payer.pay(payee.email, 700, "late")
    assert _status(retry) == (200, "")
    assert await payer.balance() == 10_000 - 700
    assert await payee.balance() == 700
    assert _transaction_count(app_server.dsn) == 2


@pytest_twisted.ensureDeferred
async def test_work_past_its_deadline_is_refused_with_no_effect(client, app_server):
    """A top-up whose deadline passes while it waits for a lock gets 503 saying it had no
    effect (the client here waits longer than the deadline it announces)."""
    session = await new_session(client)
    request = messages.topup(session.user_id, session.token_id, 500)
    with row_locked(app_server.dsn, session.user_id):
        request.deadline_ms = int((time.time() + 0.4) * 1000)
        answered = client.call(request, timeout=10)
        await deferLater(reactor, 0.8, lambda: None)
    response = await answered
    assert _status(response) == (503, "unavailable")
    assert response.status.no_effect
    assert await session.balance() == 0
    assert _transaction_count(app_server.dsn) == 0
