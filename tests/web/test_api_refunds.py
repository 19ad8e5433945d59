"""POST /v1/refunds over real HTTP against a real app server (SPEC §6 refunds): each success
and error reason, fresh balances for both sides, idempotency, and the transactions list's
refund_of / hold_id / refunded_amount."""

from __future__ import annotations

import dataclasses
import uuid

import pymysql
import pytest_twisted

from shillings_app.config import parse_dsn
from tests.web.conftest import start_web, user_with_token
from tests.web.test_unavailable import UNKNOWN, assert_503, token


def _sql(app_server, query: str, args: tuple = ()) -> None:
    conn = pymysql.connect(**parse_dsn(app_server.config.mysql_dsn), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(query, args)
    finally:
        conn.close()


async def balance(client, token) -> str:
    answer = await client.get("/v1/account", token=token)
    assert answer.code == 200, answer.raw
    return str(answer.body["user"]["balance"])


async def _paid(client, amount: str = "12.50") -> tuple[str, str, str]:
    """Alice (100.00 topped up) paid Bob ``amount``: (alice's token, bob's, payment id)."""
    alice = await user_with_token(client, "alice@example.com", topup="100.00")
    bob = await user_with_token(client, "bob@example.com")
    paid = await client.post(
        "/v1/pay", {"receiver_email": "bob@example.com", "amount": amount}, token=alice
    )
    assert paid.code == 200, paid.raw
    return alice, bob, paid.body["transaction_id"]


@pytest_twisted.ensureDeferred
async def test_a_full_refund_and_both_balances_are_fresh(web):
    alice, bob, payment = await _paid(web.client)
    # Prime both caches: the refund must outdate both, though only the answer names Alice.
    assert await balance(web.client, alice) == "87.50"
    assert await balance(web.client, bob) == "12.50"
    answer = await web.client.post("/v1/refunds", {"transaction_id": payment}, token=bob)
    assert answer.code == 201, answer.raw
    assert answer.body["status"] == {"code": 201, "message": "Created"}
    refund = answer.body["refund"]
    assert refund == {
        "transaction_id": refund["transaction_id"],
        "sender_email": "bob@example.com",
        "receiver_email": "alice@example.com",
        "amount": "12.50",
        "created_at": refund["created_at"],
        "kind": "refund",
        "hold_id": None,
        "refund_of": payment,
    }
    uuid.UUID(refund["transaction_id"])
    assert answer.body["balance"] == "0.00"
    assert await balance(web.client, alice) == "100.00"
    assert await balance(web.client, bob) == "0.00"
    # Each side's event carries the refund as the API shows it.
    for who, kind in ((bob, "refund.sent"), (alice, "refund.received")):
        events = await web.client.get(f"/v1/events?type={kind}", token=who)
        assert events.code == 200, events.raw
        assert [e["data"] for e in events.body["events"]] == [refund]


@pytest_twisted.ensureDeferred
async def test_partial_refunds_and_the_transactions_list(web):
    alice, bob, payment = await _paid(web.client, "10.00")
    for amount, left in (("2.50", "7.50"), (3, "4.50")):
        answer = await web.client.post(
            "/v1/refunds", {"transaction_id": payment.upper(), "amount": amount}, token=bob
        )
        assert answer.code == 201, answer.raw
        assert answer.body["balance"] == left
    too_much = await web.client.post(
        "/v1/refunds", {"transaction_id": payment, "amount": "4.51"}, token=bob
    )
    assert (too_much.code, too_much.reason) == (422, "refund_exceeds_payment")
    assert "4.50" in too_much.body["status"]["message"]
    rest = await web.client.post(
        "/v1/refunds", {"transaction_id": payment, "amount": None}, token=bob
    )
    assert rest.code == 201 and rest.body["refund"]["amount"] == "4.50"

    listed = await web.client.get("/v1/transactions", token=alice)
    assert listed.code == 200, listed.raw
    rows = listed.body["transactions"]
    assert [r["kind"] for r in rows] == ["refund", "refund", "refund", "payment", "topup"]
    assert [r["amount"] for r in rows[:3]] == ["4.50", "3.00", "2.50"]
    assert {r["refund_of"] for r in rows[:3]} == {payment}
    assert all(r["hold_id"] is None and "refunded_amount" not in r for r in rows[:3])
    paid, topup = rows[3], rows[4]
    assert (paid["refunded_amount"], paid["refund_of"], paid["hold_id"]) == ("10.00", None, None)
    assert (topup["refund_of"], topup["hold_id"]) == (None, None)
    assert "refunded_amount" not in topup
    assert await balance(web.client, alice) == "100.00"


@pytest_twisted.ensureDeferred
async def test_a_capture_shows_its_hold_and_refunds_like_a_payment(web):
    """Alice holds 8.00 for Bob, who captures 5.00 and refunds 1.00 of the capture."""
    alice, bob, _ = await _paid(web.client)
    held = await web.client.post(
        "/v1/holds", {"receiver_email": "bob@example.com", "amount": "8.00"}, token=alice
    )
    assert held.code == 201, held.raw
    hold = held.body["hold"]["hold_id"]
    captured = await web.client.post(f"/v1/holds/{hold}/capture", {"amount": "5.00"}, token=bob)
    assert captured.code == 200, captured.raw
    capture = captured.body["transaction_id"]
    answer = await web.client.post(
        "/v1/refunds", {"transaction_id": capture, "amount": "1.00"}, token=bob
    )
    assert answer.code == 201, answer.raw
    assert answer.body["refund"]["refund_of"] == capture
    rows = (await web.client.get("/v1/transactions?limit=2", token=bob)).body["transactions"]
    assert [r["kind"] for r in rows] == ["refund", "capture"]
    assert (rows[1]["hold_id"], rows[1]["refunded_amount"]) == (hold, "1.00")
    assert await balance(web.client, alice) == "83.50"


@pytest_twisted.ensureDeferred
async def test_transaction_not_found(web):
    alice, bob, payment = await _paid(web.client)
    carol = await user_with_token(web.client, "carol@example.com", topup="50.00")
    for who, transaction_id in (
        (alice, payment),  # the payer is not its receiver
        (carol, payment),
        (bob, str(uuid.uuid4())),
        (bob, "ch_3MtwBwLkdIwHu7ix28a3tqPa"),  # not a UUID: no transaction has that id
        (bob, payment + "0"),
    ):
        answer = await web.client.post("/v1/refunds", {"transaction_id": transaction_id}, token=who)
        assert (answer.code, answer.reason) == (404, "transaction_not_found"), transaction_id
    assert await balance(web.client, bob) == "12.50"


@pytest_twisted.ensureDeferred
async def test_not_refundable(web):
    alice, bob, payment = await _paid(web.client)
    topup = await web.client.post("/v1/topup", {"amount": "1.00"}, token=bob)
    answer = await web.client.post(
        "/v1/refunds", {"transaction_id": topup.body["transaction_id"]}, token=bob
    )
    assert (answer.code, answer.reason) == (422, "not_refundable")
    refund = await web.client.post(
        "/v1/refunds", {"transaction_id": payment, "amount": "1.00"}, token=bob
    )
    back = await web.client.post(
        "/v1/refunds", {"transaction_id": refund.body["refund"]["transaction_id"]}, token=alice
    )
    assert (back.code, back.reason) == (422, "not_refundable")


@pytest_twisted.ensureDeferred
async def test_refund_exceeds_payment_when_nothing_remains(web):
    _, bob, payment = await _paid(web.client, "5.00")
    await web.client.post("/v1/topup", {"amount": "20.00"}, token=bob)
    assert (await web.client.post("/v1/refunds", {"transaction_id": payment}, token=bob)).code == (
        201
    )
    for body in ({"transaction_id": payment}, {"transaction_id": payment, "amount": "0.01"}):
        answer = await web.client.post("/v1/refunds", body, token=bob)
        assert (answer.code, answer.reason) == (422, "refund_exceeds_payment")
    assert await balance(web.client, bob) == "20.00"


@pytest_twisted.ensureDeferred
async def test_insufficient_funds(web):
    _, bob, payment = await _paid(web.client, "10.00")
    spent = await web.client.post(
        "/v1/pay", {"receiver_email": "alice@example.com", "amount": "6.00"}, token=bob
    )
    assert spent.code == 200
    answer = await web.client.post("/v1/refunds", {"transaction_id": payment}, token=bob)
    assert (answer.code, answer.reason) == (422, "insufficient_funds")
    answer = await web.client.post(
        "/v1/refunds", {"transaction_id": payment, "amount": "4.00"}, token=bob
    )
    assert answer.code == 201 and answer.body["balance"] == "0.00"


@pytest_twisted.ensureDeferred
async def test_balance_limit_of_the_original_sender(web, app_server):
    _, bob, payment = await _paid(web.client, "10.00")
    _sql(
        app_server,
        "UPDATE users SET balance = %s WHERE email = 'alice@example.com'",
        (10**15 - 100,),
    )
    answer = await web.client.post(
        "/v1/refunds", {"transaction_id": payment, "amount": "1.01"}, token=bob
    )
    assert (answer.code, answer.reason) == (422, "balance_limit")
    assert await balance(web.client, bob) == "10.00"


@pytest_twisted.ensureDeferred
async def test_bad_requests(web):
    _, bob, payment = await _paid(web.client)
    for body in ({}, {"transaction_id": None}, {"transaction_id": ""}, {"transaction_id": 7}):
        answer = await web.client.post("/v1/refunds", body, token=bob)
        assert (answer.code, answer.reason) == (400, "invalid_request"), body
    for amount in (0, "0", -1, "1.001", "1000000.01", "abc", True):
        answer = await web.client.post(
            "/v1/refunds", {"transaction_id": payment, "amount": amount}, token=bob
        )
        assert (answer.code, answer.reason) == (400, "invalid_amount"), amount
    answer = await web.client.post(
        "/v1/refunds", {"transaction_id": payment, "reason": "x"}, token=bob
    )
    assert (answer.code, answer.reason) == (400, "parameter_unknown")
    answer = await web.client.post("/v1/refunds", {"transaction_id": payment})
    assert (answer.code, answer.reason) == (401, "unauthenticated")
    answer = await web.client.request(
        "POST", "/v1/refunds", data=b'{"transaction_id": "x"}', token=bob
    )
    assert (answer.code, answer.reason) == (415, "unsupported_media_type")
    assert await balance(web.client, bob) == "12.50"


@pytest_twisted.ensureDeferred
async def test_idempotency_key_replays_and_refuses_another_body(web):
    alice, bob, payment = await _paid(web.client, "10.00")
    body = {"transaction_id": payment, "amount": "3.00"}
    first = await web.client.post("/v1/refunds", body, token=bob, headers={"Idempotency-Key": "r"})
    again = await web.client.post(
        "/v1/refunds",
        {"transaction_id": payment.upper(), "amount": 3},
        token=bob,
        headers={"Idempotency-Key": "r"},
    )
    assert first.code == again.code == 201, again.raw
    assert again.body["refund"] == first.body["refund"]
    assert again.body["balance"] == first.body["balance"] == "7.00"
    other = await web.client.post(
        "/v1/refunds",
        {"transaction_id": payment, "amount": "3.01"},
        token=bob,
        headers={"Idempotency-Key": "r"},
    )
    assert (other.code, other.reason) == (422, "idempotency_key_reused")
    assert await balance(web.client, bob) == "7.00"
    assert await balance(web.client, alice) == "93.00"


@pytest_twisted.ensureDeferred
async def test_a_lost_refund_answer_is_an_unknown_outcome(edge_web, fake_app):
    fake_app.factory.responder = fake_app.factory.hang
    web = await start_web(dataclasses.replace(edge_web.config, request_timeout=0.5))
    try:
        answer = await web.client.post(
            "/v1/refunds", {"transaction_id": str(uuid.uuid4())}, token=token()
        )
        assert_503(answer, says=UNKNOWN)
    finally:
        await web.server.stop()
