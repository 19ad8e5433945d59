"""Holds through HTTP (SPEC §6): every success and error reason, idempotent replays, and a
cached account that never shows a stale held/available: after create, capture and void,
and after a hold expires with no request at all."""

from __future__ import annotations

import itertools
import time

import pytest_twisted
from twisted.internet import reactor, task

from shillings_app.tokens import TokenIssuer
from shillings_proto import pb
from shillings_web.cache import EPOCH_KEY
from tests.app.helpers import sql
from tests.web.conftest import TEST_SECRET, make_config, start_web, user_with_token

_n = itertools.count()


async def _parties(client, funds: str = "100.00"):
    n = next(_n)
    payer, shop = f"hpayer{n}@example.com", f"hshop{n}@example.com"
    return (
        payer,
        await user_with_token(client, payer, topup=funds),
        shop,
        await user_with_token(client, shop),
    )


async def _account(client, token) -> tuple[str, str, str]:
    answer = await client.get("/v1/account", token=token)
    assert answer.code == 200, answer.raw
    user = answer.body["user"]
    return user["balance"], user["held"], user["available"]


@pytest_twisted.ensureDeferred
async def test_hold_capture_void_and_the_cached_account_follows(web):
    client = web.client
    payer, payer_token, shop, shop_token = await _parties(client)
    assert await _account(client, payer_token) == ("100.00", "0.00", "100.00")  # cached now
    created = await client.post(
        "/v1/holds", {"receiver_email": shop, "amount": "30.00", "expires_in": 3600},
        token=payer_token,
    )  # fmt: skip
    assert created.code == 201, created.raw
    hold = created.body["hold"]
    assert created.body["available"] == "70.00"
    assert (hold["payer_email"], hold["receiver_email"], hold["state"]) == (payer, shop, "held")
    assert (hold["amount"], hold["captured_amount"]) == ("30.00", "0.00")
    assert await _account(client, payer_token) == ("100.00", "30.00", "70.00")
    assert await _account(client, shop_token) == ("0.00", "0.00", "0.00")  # cached now
    captured = await client.post(
        f"/v1/holds/{hold['hold_id']}/capture", {"amount": 12.5}, token=shop_token
    )
    assert captured.code == 200, captured.raw
    assert captured.body["hold"]["state"] == "captured"
    assert captured.body["hold"]["captured_amount"] == "12.50"
    assert captured.body["transaction_id"]
    assert hold["capture_transaction_id"] is None
    assert captured.body["hold"]["capture_transaction_id"] == captured.body["transaction_id"]
    [event, _created] = (await client.get("/v1/events", token=shop_token)).body["events"]
    assert event["type"] == "hold.captured" and event["data"] == captured.body["hold"]
    assert await _account(client, payer_token) == ("87.50", "0.00", "87.50")
    assert await _account(client, shop_token) == ("12.50", "0.00", "12.50")
    txs = (await client.get("/v1/transactions", token=shop_token)).body["transactions"]
    assert (txs[0]["kind"], txs[0]["amount"]) == ("capture", "12.50")
    by_hold = await client.get(f"/v1/transactions?hold_id={hold['hold_id']}", token=payer_token)
    assert by_hold.code == 200, by_hold.raw
    assert [t["transaction_id"] for t in by_hold.body["transactions"]] == [
        captured.body["transaction_id"]
    ]
    bad = await client.get("/v1/transactions?hold_id=12", token=payer_token)
    assert (bad.code, bad.reason) == (400, "invalid_request")
    second = await client.post(
        "/v1/holds", {"receiver_email": shop, "amount": 40}, token=payer_token
    )
    assert await _account(client, payer_token) == ("87.50", "40.00", "47.50")
    # A void with no body at all.
    voided = await client.post(f"/v1/holds/{second.body['hold']['hold_id']}/void", token=shop_token)
    assert voided.code == 200, voided.raw
    assert voided.body["hold"]["state"] == "voided"
    assert await _account(client, payer_token) == ("87.50", "0.00", "87.50")
    listed = await client.get("/v1/holds?role=payer&limit=1", token=payer_token)
    assert listed.code == 200
    assert [h["state"] for h in listed.body["holds"]] == ["voided"]
    rest = await client.get(
        f"/v1/holds?role=payer&cursor={listed.body['next_cursor']}", token=payer_token
    )
    assert [h["state"] for h in rest.body["holds"]] == ["captured"]
    assert rest.body["next_cursor"] is None
    shop_view = await client.get("/v1/holds?role=receiver&state=voided", token=shop_token)
    assert len(shop_view.body["holds"]) == 1


@pytest_twisted.ensureDeferred
async def test_every_error_reason(web, app_server):
    client = web.client
    payer, payer_token, shop, shop_token = await _parties(client, funds="10.00")

    async def create(body, token=payer_token):
        answer = await client.post("/v1/holds", body, token=token)
        return answer.code, answer.reason

    assert await create({"receiver_email": shop, "amount": "10.01"}) == (
        422,
        "insufficient_funds",
    )
    assert await create({"receiver_email": shop, "amount": "0"}) == (400, "invalid_amount")
    assert await create({"receiver_email": shop, "amount": 1, "expires_in": 59}) == (
        400,
        "invalid_request",
    )
    assert await create({"receiver_email": shop, "amount": 1, "expires_in": "60"}) == (
        400,
        "invalid_request",
    )
    assert await create({"receiver_email": shop, "amount": 1, "expires_in": 2_592_001}) == (
        400,
        "invalid_request",
    )
    assert await create({"receiver_email": shop, "amount": 1, "note": "x"}) == (
        400,
        "parameter_unknown",
    )
    assert await create({"receiver_email": "nobody@example.com", "amount": 1}) == (
        404,
        "receiver_not_found",
    )
    assert await create({"receiver_email": payer, "amount": 1}) == (422, "self_payment")
    assert (await client.post("/v1/holds", {"receiver_email": shop, "amount": 1})).code == 401

    hold = (await client.post("/v1/holds", {"receiver_email": shop, "amount": 5},
                              token=payer_token)).body["hold"]  # fmt: skip
    path = f"/v1/holds/{hold['hold_id']}"

    async def post(url, body=None, token=shop_token, **kw):
        answer = await client.post(url, body, token=token, **kw)
        return answer.code, answer.reason

    assert await post("/v1/holds/not-a-uuid/capture") == (404, "hold_not_found")
    assert await post(f"/v1/holds/{hold['hold_id']}x/capture") == (404, "hold_not_found")
    # Ids are read in either case (as a refund's transaction_id): this names the hold.
    assert await post(f"/v1/holds/{hold['hold_id'].upper()}/capture", {"amount": "5.01"}) == (
        400,
        "invalid_amount",
    )
    assert await post("/v1/holds/00000000-0000-4000-8000-000000000000/void") == (
        404,
        "hold_not_found",
    )
    assert await post(f"{path}/capture", token=payer_token) == (404, "hold_not_found")
    assert await post(f"{path}/void", token=payer_token) == (404, "hold_not_found")
    assert await post(f"{path}/capture", {"amount": "5.01"}) == (400, "invalid_amount")
    assert await post(f"{path}/capture", {"amount": "-1"}) == (400, "invalid_amount")
    assert await post(f"{path}/void", {"x": 1}) == (400, "parameter_unknown")
    sql(app_server.dsn, "UPDATE users SET balance = %s WHERE email = %s", (10**15 - 1, shop))
    assert await post(f"{path}/capture") == (422, "balance_limit")
    sql(app_server.dsn, "UPDATE users SET balance = 0 WHERE email = %s", (shop,))
    keyed = {"Idempotency-Key": "cap-1"}
    assert await post(f"{path}/capture", {"amount": 1}, headers=keyed) == (200, None)
    assert await post(f"{path}/capture", {"amount": 2}, headers=keyed) == (
        422,
        "idempotency_key_reused",
    )
    assert await post(f"{path}/capture") == (409, "hold_not_active")
    assert await post(f"{path}/void") == (409, "hold_not_active")
    assert (await client.get("/v1/holds?role=both", token=payer_token)).reason == (
        "invalid_request"
    )
    assert (await client.get("/v1/holds?state=gone", token=payer_token)).code == 400
    assert (await client.get("/v1/holds?limit=0", token=payer_token)).code == 400


@pytest_twisted.ensureDeferred
async def test_idempotent_create_replays_the_first_answer(web, app_server):
    client = web.client
    _, payer_token, shop, shop_token = await _parties(client)
    body = {"receiver_email": shop, "amount": "20.00"}
    key = {"Idempotency-Key": "hold-once"}
    first = await client.post("/v1/holds", body, token=payer_token, headers=key)
    hold_id = first.body["hold"]["hold_id"]
    await client.post(f"/v1/holds/{hold_id}/void", token=shop_token)
    again = await client.post("/v1/holds", body, token=payer_token, headers=key)
    assert again.code == 201
    assert again.body["hold"] == first.body["hold"]
    assert again.body["available"] == "80.00"
    other = await client.post(
        "/v1/holds", {**body, "amount": "21.00"}, token=payer_token, headers=key
    )
    assert (other.code, other.reason) == (422, "idempotency_key_reused")
    assert sql(app_server.dsn, "SELECT COUNT(*) FROM holds") == [(1,)]


@pytest_twisted.ensureDeferred
async def test_cached_account_does_not_outlive_the_next_hold_expiry(web, app_server):
    client = web.client
    _, payer_token, shop, _ = await _parties(client)
    created = await client.post(
        "/v1/holds", {"receiver_email": shop, "amount": "25.00"}, token=payer_token
    )
    # The hold expires in 1.5 s (as if created with a short expires_in); nothing is sent
    # to the app server about it when it does.
    sql(
        app_server.dsn,
        "UPDATE holds SET expires_at = UTC_TIMESTAMP(6) + INTERVAL 1500000 MICROSECOND"
        " WHERE hold_id = %s",
        (created.body["hold"]["hold_id"],),
    )
    cache = web.server.api.cache
    assert await _account(client, payer_token) == ("100.00", "25.00", "75.00")
    hits = cache.outcomes["hit"]
    assert await _account(client, payer_token) == ("100.00", "25.00", "75.00")
    assert cache.outcomes["hit"] == hits + 1  # served from the cache before the expiry
    # Poll (bounded) until the expiry has passed: the account shows it released.
    seen = [await _account(client, payer_token)]
    for _ in range(100):
        if seen[-1] == ("100.00", "0.00", "100.00"):
            break
        await task.deferLater(reactor, 0.05)
        seen.append(await _account(client, payer_token))
    assert seen[-1] == ("100.00", "0.00", "100.00"), seen
    listed = await client.get("/v1/holds", token=payer_token)
    assert listed.body["holds"][0]["state"] == "expired"


@pytest_twisted.ensureDeferred
async def test_bump_all_outdates_every_cached_profile_and_serves_again_at_once(web, app_server):
    client = web.client
    payer, payer_token, shop, shop_token = await _parties(client)
    assert await _account(client, payer_token) == ("100.00", "0.00", "100.00")
    assert await _account(client, shop_token) == ("0.00", "0.00", "0.00")
    # A change the web layer did not see the users of (e.g. its answer was lost).
    sql(app_server.dsn, "UPDATE users SET balance = balance + 100 WHERE email IN (%s, %s)",
        (payer, shop))  # fmt: skip
    assert await _account(client, payer_token) == ("100.00", "0.00", "100.00")  # stale
    cache = web.server.api.cache
    await cache.bump_all()
    bypasses = cache.outcomes["bypass"]
    assert await _account(client, payer_token) == ("101.00", "0.00", "101.00")
    assert await _account(client, shop_token) == ("1.00", "0.00", "1.00")
    assert cache.outcomes["bypass"] == bypasses  # the new epoch is settled at once
    hits = cache.outcomes["hit"]
    assert await _account(client, shop_token) == ("1.00", "0.00", "1.00")
    assert cache.outcomes["hit"] == hits + 1


@pytest_twisted.ensureDeferred
async def test_a_capture_whose_answer_was_lost_outdates_every_cached_profile(
    fake_app, web_redis_socket
):
    """The payer of a hold is known only from the answer: with no answer (the connection
    dropped after the request was sent), every cached profile is outdated at once; with a
    refusal, nothing is."""
    config = make_config([fake_app.address], web_redis_socket, TEST_SECRET, cache_grace=10.0)
    edge_web = await start_web(config)
    try:
        token = TokenIssuer(TEST_SECRET, 3600).issue(7, "shop@example.com", int(time.time())).token
        redis = edge_web.server.redis
        path = "/v1/holds/00000000-0000-4000-8000-000000000001/capture"

        def refused(request: pb.Request) -> pb.Response:
            return pb.Response(status=pb.Status(code=404, reason="hold_not_found", message="no"))

        await redis.execute("set", EPOCH_KEY, "before:0.0")
        fake_app.factory.responder = refused
        answer = await edge_web.client.post(path, token=token)
        assert (answer.code, answer.reason) == (404, "hold_not_found")
        assert await redis.execute("get", EPOCH_KEY) == "before:0.0"
        fake_app.factory.drop_next = 1
        answer = await edge_web.client.post(path, token=token)
        assert answer.code == 503
        epoch = await redis.execute("get", EPOCH_KEY)
        assert epoch not in (None, "before:0.0")
        # Settled at once: the cache serves again without waiting for the 10 s grace period.
        assert float(epoch.rsplit(":", 1)[1]) <= time.time() - 9.0
    finally:
        await edge_web.server.stop()
