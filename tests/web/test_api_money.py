"""Top-up, pay, idempotency, transactions over real HTTP against a real app server."""

from __future__ import annotations

import pymysql
import pytest_twisted

from shillings_app.config import parse_dsn
from tests.web.conftest import user_with_token


async def balance(client, token) -> str:
    answer = await client.get("/v1/account", token=token)
    assert answer.code == 200, answer.raw
    return str(answer.body["user"]["balance"])


@pytest_twisted.ensureDeferred
async def test_topup_success_and_amount_forms(web):
    token = await user_with_token(web.client, "a@example.com")
    answer = await web.client.post("/v1/topup", {"amount": "10.05"}, token=token)
    assert answer.code == 200
    assert answer.body["balance"] == "10.05"
    assert isinstance(answer.body["transaction_id"], str) and answer.body["transaction_id"]
    answer = await web.client.post("/v1/topup", {"amount": 0.1}, token=token)
    assert answer.body["balance"] == "10.15"
    answer = await web.client.post("/v1/topup", {"amount": 2}, token=token)
    assert answer.body["balance"] == "12.15"
    answer = await web.client.post("/v1/topup", {"amount": 1000000}, token=token)
    assert answer.body["balance"] == "1000012.15"
    assert await balance(web.client, token) == "1000012.15"


@pytest_twisted.ensureDeferred
async def test_topup_errors(web):
    token = await user_with_token(web.client, "a@example.com")
    for amount in ("0", 0, -1, "1.001", "1000000.01", "abc", None, True, 0.001):
        answer = await web.client.post("/v1/topup", {"amount": amount}, token=token)
        assert (answer.code, answer.reason) == (400, "invalid_amount"), amount
    answer = await web.client.request(
        "POST", "/v1/topup", data=b"{bad", token=token, headers={"Content-Type": "application/json"}
    )
    assert (answer.code, answer.reason) == (400, "invalid_request")
    assert await balance(web.client, token) == "0.00"


@pytest_twisted.ensureDeferred
async def test_topup_balance_limit(web, app_server):
    token = await user_with_token(web.client, "rich@example.com")
    conn = pymysql.connect(**parse_dsn(app_server.config.mysql_dsn))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "UPDATE users SET balance = %s WHERE email = %s",
                (10**15 - 50, "rich@example.com"),
            )
        conn.commit()
    finally:
        conn.close()
    answer = await web.client.post("/v1/topup", {"amount": "1.00"}, token=token)
    assert (answer.code, answer.reason) == (422, "balance_limit")
    answer = await web.client.post("/v1/topup", {"amount": "0.50"}, token=token)
    assert answer.code == 200
    assert answer.body["balance"] == "10000000000000.00"


@pytest_twisted.ensureDeferred
async def test_pay_and_balances_are_fresh_for_both_sides(web):
    alice = await user_with_token(web.client, "alice@example.com", topup="100.00")
    bob = await user_with_token(web.client, "bob@example.com")
    # Prime both caches.
    assert await balance(web.client, alice) == "100.00"
    assert await balance(web.client, bob) == "0.00"
    assert await balance(web.client, bob) == "0.00"
    answer = await web.client.post(
        "/v1/pay", {"receiver_email": "BOB@example.com", "amount": "12.50"}, token=alice
    )
    assert answer.code == 200, answer.raw
    assert answer.body["balance"] == "87.50"
    assert answer.body["transaction_id"]
    # Straight after the answer, both read fresh balances (cookie and bearer alike).
    assert await balance(web.client, alice) == "87.50"
    assert await balance(web.client, bob) == "12.50"
    cookie_read = await web.client.get("/v1/account", cookie=bob)
    assert cookie_read.body["user"]["balance"] == "12.50"
    answer = await web.client.post(
        "/v1/pay", {"receiver_email": "alice@example.com", "amount": 2.5}, token=bob
    )
    assert answer.code == 200
    assert await balance(web.client, alice) == "90.00"
    assert await balance(web.client, bob) == "10.00"
    # A top-up refreshes the cache too.
    await web.client.post("/v1/topup", {"amount": "1.00"}, token=bob)
    assert await balance(web.client, bob) == "11.00"


@pytest_twisted.ensureDeferred
async def test_pay_errors(web):
    alice = await user_with_token(web.client, "alice@example.com", topup="10.00")
    await user_with_token(web.client, "bob@example.com")
    cases = [
        ({"receiver_email": "nobody@example.com", "amount": "1.00"}, 404, "receiver_not_found"),
        ({"receiver_email": "alice@example.com", "amount": "1.00"}, 422, "self_payment"),
        ({"receiver_email": "bob@example.com", "amount": "10.01"}, 422, "insufficient_funds"),
        ({"receiver_email": "bob@example.com", "amount": "0"}, 400, "invalid_amount"),
        ({"receiver_email": "bob@example.com", "amount": "1.234"}, 400, "invalid_amount"),
        ({"receiver_email": "bob@example.com"}, 400, "invalid_amount"),
        ({"amount": "1.00"}, 400, "invalid_request"),
        ({"receiver_email": "not-an-email", "amount": "1.00"}, 400, "invalid_request"),
        ({"receiver_email": 42, "amount": "1.00"}, 400, "invalid_request"),
    ]
    for body, code, reason in cases:
        answer = await web.client.post("/v1/pay", body, token=alice)
        assert (answer.code, answer.reason) == (code, reason), body
    assert await balance(web.client, alice) == "10.00"


@pytest_twisted.ensureDeferred
async def test_a_refused_pay_is_refused_again_under_its_key_after_the_funds_came(web):
    """SPEC §2: same key, same body, same response: the client that was told the payment
    failed is never charged by a retry of it."""
    alice = await user_with_token(web.client, "alice@example.com", topup="1.00")
    await user_with_token(web.client, "bob@example.com")
    key = {"Idempotency-Key": "checkout-7"}
    body = {"receiver_email": "bob@example.com", "amount": "5.00"}
    first = await web.client.post("/v1/pay", body, token=alice, headers=key)
    assert (first.code, first.reason) == (422, "insufficient_funds")
    assert (await web.client.post("/v1/topup", {"amount": "10.00"}, token=alice)).code == 200
    again = await web.client.post("/v1/pay", body, token=alice, headers=key)
    assert (again.code, again.body) == (first.code, first.body)
    assert await balance(web.client, alice) == "11.00"
    fresh = await web.client.post("/v1/pay", body, token=alice, headers={"Idempotency-Key": "k8"})
    assert fresh.code == 200
    assert await balance(web.client, alice) == "6.00"


@pytest_twisted.ensureDeferred
async def test_idempotent_pay_and_topup(web):
    alice = await user_with_token(web.client, "alice@example.com", topup="50.00")
    bob = await user_with_token(web.client, "bob@example.com")
    key = {"Idempotency-Key": "pay-0001"}
    body = {"receiver_email": "bob@example.com", "amount": "5.00"}
    first = await web.client.post("/v1/pay", body, token=alice, headers=key)
    again = await web.client.post("/v1/pay", body, token=alice, headers=key)
    assert first.code == again.code == 200
    assert first.body == again.body
    assert await balance(web.client, alice) == "45.00"
    assert await balance(web.client, bob) == "5.00"
    other = await web.client.post("/v1/pay", {**body, "amount": "6.00"}, token=alice, headers=key)
    assert (other.code, other.reason) == (422, "idempotency_key_reused")
    assert await balance(web.client, alice) == "45.00"

    tkey = {"Idempotency-Key": "topup 1"}
    first = await web.client.post("/v1/topup", {"amount": "1.00"}, token=bob, headers=tkey)
    again = await web.client.post("/v1/topup", {"amount": "1.00"}, token=bob, headers=tkey)
    assert first.body == again.body and first.body["balance"] == "6.00"
    other = await web.client.post("/v1/topup", {"amount": "2.00"}, token=bob, headers=tkey)
    assert (other.code, other.reason) == (422, "idempotency_key_reused")
    assert await balance(web.client, bob) == "6.00"

    for bad in ("", "k" * 256, "caf\u00e9"):
        answer = await web.client.post(
            "/v1/topup",
            {"amount": "1.00"},
            token=bob,
            headers={"Idempotency-Key": bad.encode("utf-8").decode("latin-1")},
        )
        assert (answer.code, answer.reason) == (400, "invalid_request"), bad
    assert await balance(web.client, bob) == "6.00"


@pytest_twisted.ensureDeferred
async def test_transactions_pagination_walks_every_row_once(web):
    alice = await user_with_token(web.client, "alice@example.com")
    bob = await user_with_token(web.client, "bob@example.com", topup="100.00")
    expected = []
    for cents in range(1, 8):
        answer = await web.client.post("/v1/topup", {"amount": cents}, token=alice)
        expected.append(answer.body["transaction_id"])
        answer = await web.client.post(
            "/v1/pay", {"receiver_email": "alice@example.com", "amount": cents}, token=bob
        )
        expected.append(answer.body["transaction_id"])
    seen = []
    cursor = None
    for _ in range(20):
        path = "/v1/transactions?limit=3" + (f"&cursor={cursor}" if cursor else "")
        answer = await web.client.get(path, token=alice)
        assert answer.code == 200, answer.raw
        page = answer.body["transactions"]
        assert len(page) <= 3
        seen.extend(page)
        cursor = answer.body["next_cursor"]
        if cursor is None:
            break
    assert [tx["transaction_id"] for tx in seen] == list(reversed(expected))
    assert len({tx["transaction_id"] for tx in seen}) == 14
    topups = [tx for tx in seen if tx["kind"] == "topup"]
    payments = [tx for tx in seen if tx["kind"] == "payment"]
    assert len(topups) == len(payments) == 7
    assert all(tx["sender_email"] is None for tx in topups)
    assert all(tx["sender_email"] == "bob@example.com" for tx in payments)
    assert all(tx["receiver_email"] == "alice@example.com" for tx in seen)
    assert seen[0]["amount"] == "7.00" and seen[-1]["amount"] == "1.00"
    # Default page size is 20: everything at once.
    answer = await web.client.get("/v1/transactions", token=alice)
    assert len(answer.body["transactions"]) == 14 and answer.body["next_cursor"] is None


@pytest_twisted.ensureDeferred
async def test_transactions_bad_queries(web):
    token = await user_with_token(web.client, "alice@example.com")
    for query in ("limit=0", "limit=101", "limit=x", "limit=1&limit=2", "cursor=garbage!!"):
        answer = await web.client.get(f"/v1/transactions?{query}", token=token)
        assert (answer.code, answer.reason) == (400, "invalid_request"), query
