"""GET /v1/events and the webhook endpoints over real HTTP against a real app server:
each success and each error, as the client sees them."""

from __future__ import annotations

import re

import pytest_twisted

from shillings_app.webhooks.allow import parse_allow
from tests.app.helpers import sql
from tests.app.test_webhooks import record_attempts
from tests.web.conftest import login, make_config, signup, start_web, user_with_token

URL = "http://127.0.0.1:9/hook"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest_twisted.ensureDeferred
async def test_events_after_topup_and_pay_for_each_party(web):
    alice = await user_with_token(web.client, "alice@example.com", topup="50.00")
    bob = await user_with_token(web.client, "bob@example.com")
    paid = await web.client.post(
        "/v1/pay", {"receiver_email": "bob@example.com", "amount": "12.50"}, token=alice
    )
    assert paid.code == 200, paid.raw

    first = await web.client.get("/v1/events?limit=1", token=alice)
    assert first.code == 200, first.raw
    [sent] = first.body["events"]
    assert sent["type"] == "payment.sent" and sent["event_id"].startswith("evt_")
    assert sent["data"]["transaction_id"] == paid.body["transaction_id"]
    assert (sent["data"]["amount"], sent["data"]["receiver_email"]) == ("12.50", "bob@example.com")
    cursor = first.body["next_cursor"]
    assert isinstance(cursor, str)
    second = await web.client.get(f"/v1/events?limit=1&cursor={cursor}", token=alice)
    [topped] = second.body["events"]
    assert (topped["type"], topped["data"]["amount"]) == ("topup.succeeded", "50.00")
    assert topped["data"]["sender_email"] is None
    assert second.body["next_cursor"] is None

    received = await web.client.get("/v1/events", token=bob)
    assert [e["type"] for e in received.body["events"]] == ["payment.received"]
    assert received.body["events"][0]["data"] == sent["data"]
    only = await web.client.get("/v1/events?type=topup.succeeded", token=alice)
    assert [e["event_id"] for e in only.body["events"]] == [topped["event_id"]]


@pytest_twisted.ensureDeferred
async def test_events_errors(web):
    token = await user_with_token(web.client, "alice@example.com")
    for query in ("type=nope", "limit=0", "limit=101", "limit=x", "cursor=bad", "type=a&type=b"):
        answer = await web.client.get(f"/v1/events?{query}", token=token)
        assert (answer.code, answer.reason) == (400, "invalid_request"), query
    assert (
        "type must be one of"
        in (await web.client.get("/v1/events?type=x", token=token)).body["status"]["message"]
    )
    answer = await web.client.get("/v1/events")
    assert (answer.code, answer.reason) == (401, "unauthenticated")
    assert (await web.client.post("/v1/events", {}, token=token)).code == 405


@pytest_twisted.ensureDeferred
async def test_webhook_lifecycle(web, app_server):
    token = await user_with_token(web.client, "alice@example.com")
    created = await web.client.post(
        "/v1/webhooks", {"url": URL, "event_types": ["payment.received"]}, token=token
    )
    assert created.code == 201, created.raw
    webhook = created.body["webhook"]
    assert set(webhook) == {"webhook_id", "url", "event_types", "state", "secret", "created_at"}
    assert UUID.match(webhook["webhook_id"])
    assert (webhook["url"], webhook["event_types"], webhook["state"]) == (
        URL,
        ["payment.received"],
        "enabled",
    )
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", webhook["secret"])

    listed = await web.client.get("/v1/webhooks", token=token)
    assert listed.code == 200
    assert listed.body["webhooks"] == [{k: v for k, v in webhook.items() if k != "secret"}]

    path = f"/v1/webhooks/{webhook['webhook_id']}"
    log = await web.client.get(f"{path}/deliveries", token=token)
    assert (log.code, log.body["deliveries"], log.body["next_cursor"]) == (200, [], None)
    [(user_id,)] = sql(
        app_server.config.mysql_dsn,
        "SELECT user_id FROM users WHERE email = %s",
        ("alice@example.com",),
    )
    event_ids = record_attempts(app_server.config.mysql_dsn, webhook["webhook_id"], user_id, 2)
    page = await web.client.get(f"{path}/deliveries?limit=3", token=token)
    assert page.code == 200
    assert [(d["event_id"], d["attempt"], d["status_code"]) for d in page.body["deliveries"]] == [
        (event_ids[1], 2, 200),
        (event_ids[1], 1, 500),
        (event_ids[0], 2, 200),
    ]
    assert set(page.body["deliveries"][0]) == {
        "event_id",
        "attempt",
        "status_code",
        "error",
        "duration_ms",
        "attempted_at",
    }
    rest = await web.client.get(
        f"{path}/deliveries?limit=3&cursor={page.body['next_cursor']}", token=token
    )
    assert [(d["attempt"], d["error"]) for d in rest.body["deliveries"]] == [(1, "HTTP 500")]
    assert rest.body["next_cursor"] is None

    upper = f"/v1/webhooks/{webhook['webhook_id'].upper()}"  # ids: either case
    deleted = await web.client.request("DELETE", upper, token=token)
    assert (deleted.code, deleted.body) == (200, {"status": {"code": 200, "message": "OK"}})
    assert (await web.client.get("/v1/webhooks", token=token)).body["webhooks"] == []
    again = await web.client.request("DELETE", path, token=token)
    assert (again.code, again.reason) == (404, "webhook_not_found")
    assert (await web.client.get(f"{path}/deliveries", token=token)).code == 200


@pytest_twisted.ensureDeferred
async def test_webhook_create_errors(web):
    token = await user_with_token(web.client, "alice@example.com")
    cases = [
        ({"url": "ftp://127.0.0.1/x"}, 400, "invalid_url"),
        ({"url": "http://10.0.0.1/x"}, 400, "invalid_url"),
        ({"url": "http://127.0.0.1/" + "a" * 2048}, 400, "invalid_url"),
        ({}, 400, "invalid_url"),
        ({"url": 5}, 400, "invalid_request"),
        ({"url": URL, "event_types": "payment.sent"}, 400, "invalid_request"),
        ({"url": URL, "event_types": [1]}, 400, "invalid_request"),
        ({"url": URL, "event_types": ["nope"]}, 400, "invalid_request"),
        ({"url": URL, "event_types": ["payment.sent", "payment.sent"]}, 400, "invalid_request"),
        ({"url": URL, "secret": "mine"}, 400, "parameter_unknown"),
    ]
    for body, code, reason in cases:
        answer = await web.client.post("/v1/webhooks", body, token=token)
        assert (answer.code, answer.reason) == (code, reason), body
    outside = await web.client.post("/v1/webhooks", {"url": "http://10.0.0.1/x"}, token=token)
    assert "outside the networks webhooks may target" in outside.body["status"]["message"]
    plain = await web.client.request(
        "POST", "/v1/webhooks", data=b'{"url": "x"}', token=token, headers={}
    )
    assert (plain.code, plain.reason) == (415, "unsupported_media_type")
    assert (await web.client.post("/v1/webhooks", {"url": URL})).code == 401
    assert (await web.client.get("/v1/webhooks", token=token)).body["webhooks"] == []

    for n in range(5):
        assert (
            await web.client.post("/v1/webhooks", {"url": f"{URL}{n}"}, token=token)
        ).code == 201
    sixth = await web.client.post("/v1/webhooks", {"url": URL}, token=token)
    assert (sixth.code, sixth.reason) == (422, "too_many_webhooks")


@pytest_twisted.ensureDeferred
async def test_webhook_idempotency_key(web):
    token = await user_with_token(web.client, "alice@example.com")
    key = {"Idempotency-Key": "wh-1"}
    first = await web.client.post("/v1/webhooks", {"url": URL}, token=token, headers=key)
    again = await web.client.post("/v1/webhooks", {"url": URL}, token=token, headers=key)
    assert (first.code, again.code) == (201, 201)
    assert again.body["webhook"] == first.body["webhook"]
    other = await web.client.post("/v1/webhooks", {"url": URL + "x"}, token=token, headers=key)
    assert (other.code, other.reason) == (422, "idempotency_key_reused")
    assert len((await web.client.get("/v1/webhooks", token=token)).body["webhooks"]) == 1


@pytest_twisted.ensureDeferred
async def test_webhook_not_found_for_others_and_bad_ids(web):
    alice = await user_with_token(web.client, "alice@example.com")
    bob = await user_with_token(web.client, "bob@example.com")
    created = await web.client.post("/v1/webhooks", {"url": URL}, token=alice)
    path = f"/v1/webhooks/{created.body['webhook']['webhook_id']}"
    for method, target in (
        ("DELETE", path),
        ("GET", f"{path}/deliveries"),
        ("DELETE", "/v1/webhooks/nope"),
        ("GET", "/v1/webhooks/%C3%A9/deliveries"),
        ("DELETE", "/v1/webhooks/" + "a" * 4000),
    ):
        answer = await web.client.request(method, target, token=bob)
        assert (answer.code, answer.reason) == (404, "webhook_not_found"), (method, target)
    not_utf8 = await web.client.get("/v1/webhooks/%FF/deliveries", token=alice)
    assert (not_utf8.code, not_utf8.reason) == (400, "invalid_request")
    bad = await web.client.get(f"{path}/deliveries?limit=500", token=alice)
    assert (bad.code, bad.reason) == (400, "invalid_request")
    assert (await web.client.get("/v1/webhooks", token=alice)).body["webhooks"] != []


@pytest_twisted.ensureDeferred
async def test_default_allow_list_refuses_loopback_over_http(make_server, web_redis_socket):
    server = await make_server(webhook_allow=parse_allow("public"))
    config = make_config([server.address], web_redis_socket, server.config.jwt_secret)
    web = await start_web(config)
    try:
        await signup(web.client, "alice@example.com")
        token = await login(web.client, "alice@example.com")
        answer = await web.client.post("/v1/webhooks", {"url": URL}, token=token)
        assert (answer.code, answer.reason) == (400, "invalid_url")
        assert "127.0.0.1" in answer.body["status"]["message"]
    finally:
        await web.server.stop()
