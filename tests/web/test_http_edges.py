"""HTTP edges that never need business logic: envelopes for 404/405/413, request ids,
auth failures, malformed bodies, 500s without tracebacks, health."""

from __future__ import annotations

import base64
import json
import re
import time

import jwt
import pytest
import pytest_twisted
import treq
from twisted.logger import globalLogPublisher
from twisted.web.client import FileBodyProducer
from twisted.web.iweb import UNKNOWN_LENGTH

from shillings_proto import pb
from shillings_web.cache import gen_key
from tests.web.conftest import PASSWORD, TEST_SECRET, signup
from tests.web.envelopes import JSON, assert_envelope, token
from tests.web.openapi import check_documented

AUTHED = [
    ("POST", "/v1/logout"),
    ("GET", "/v1/account"),
    ("POST", "/v1/topup"),
    ("POST", "/v1/pay"),
    ("GET", "/v1/transactions"),
]


@pytest_twisted.ensureDeferred
async def test_unknown_route_is_404_envelope(edge_web):
    for path in ("/", "/v1", "/v1/nope", "/v1/account/extra", "/v1//account"):
        answer = await edge_web.client.get(path)
        assert_envelope(answer, 404, "not_found")


@pytest_twisted.ensureDeferred
async def test_wrong_method_is_405_envelope_with_allow(edge_web):
    answer = await edge_web.client.request("DELETE", "/v1/account")
    assert_envelope(answer, 405, "method_not_allowed")
    assert "GET" in answer.header("Allow")
    answer = await edge_web.client.get("/v1/pay")
    assert_envelope(answer, 405, "method_not_allowed")
    assert answer.header("Allow") == "POST"
    answer = await edge_web.client.request("OPTIONS", "/v1/pay")
    assert_envelope(answer, 405, "method_not_allowed")


@pytest_twisted.ensureDeferred
async def test_body_over_64k_is_413_by_content_length(edge_web):
    body = json.dumps({"email": "a@b.co", "password": "x" * (64 * 1024)}).encode()
    answer = await edge_web.client.request("POST", "/v1/login", data=body, headers=JSON)
    assert_envelope(answer, 413, "payload_too_large")
    # Just under the limit is read and validated (400, not 413).
    answer = await edge_web.client.request(
        "POST", "/v1/login", data=b" " * (64 * 1024), headers=JSON
    )
    assert_envelope(answer, 400, "invalid_request")


@pytest_twisted.ensureDeferred
async def test_body_over_64k_is_413_when_chunked(edge_web):
    import io

    producer = FileBodyProducer(io.BytesIO(b"{" + b" " * (200 * 1024) + b"}"))
    producer.length = UNKNOWN_LENGTH
    response = await treq.request(
        "POST",
        edge_web.client.base + "/v1/signup",
        data=producer,
        pool=edge_web.client.pool,
        timeout=15,
    )
    assert response.code == 413
    check_documented("POST", "/v1/signup", response.code)
    body = json.loads(await response.content())
    assert body["status"]["reason"] == "payload_too_large"
    assert response.headers.getRawHeaders("Transfer-Encoding") is None


@pytest_twisted.ensureDeferred
async def test_request_id_generated_or_reused(edge_web):
    answer = await edge_web.client.get("/nope")
    assert re.fullmatch(r"[0-9a-f]{32}", answer.header("X-Request-Id"))
    answer = await edge_web.client.get("/nope", headers={"X-Request-Id": "trace-42.a:b"})
    assert answer.header("X-Request-Id") == "trace-42.a:b"
    answer = await edge_web.client.get("/nope", headers={"X-Request-Id": "bad id <script>"})
    assert re.fullmatch(r"[0-9a-f]{32}", answer.header("X-Request-Id"))


@pytest_twisted.ensureDeferred
async def test_malformed_bodies_are_400(edge_web):
    for path in ("/v1/signup", "/v1/login"):
        for data in (b"", b"{", b"[1]", b'"str"', b"\xff"):
            answer = await edge_web.client.request("POST", path, data=data, headers=JSON)
            assert_envelope(answer, 400, "invalid_request")
    answer = await edge_web.client.post("/v1/signup", {"first_name": "A"})
    body = assert_envelope(answer, 400, "invalid_request")
    assert "last_name" in body["status"]["message"]


@pytest_twisted.ensureDeferred
async def test_authenticated_endpoints_refuse_without_valid_token(edge_web):
    expired = token(exp=int(time.time()) - 30, iat=int(time.time()) - 90)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = token().split(".")[1]
    alg_none = f"{header}.{payload}."
    wrong_key = jwt.encode(jwt.decode(token(), TEST_SECRET, algorithms=["HS256"]), "k" * 40)
    good = token()
    h, p, s = good.split(".")
    tampered = f"{h}.{p[:-2]}{'A' if p[-2] != 'A' else 'B'}{p[-1]}.{s}"
    for method, path in AUTHED:
        answer = await edge_web.client.request(method, path)
        assert_envelope(answer, 401, "unauthenticated")
        assert answer.header("WWW-Authenticate") == "Bearer"
        for bad in (expired, alg_none, wrong_key, tampered, "garbage"):
            answer = await edge_web.client.request(method, path, token=bad)
            assert_envelope(answer, 401, "unauthenticated")
            answer = await edge_web.client.request(method, path, cookie=bad)
            assert_envelope(answer, 401, "unauthenticated")
        answer = await edge_web.client.request(
            method, path, headers={"Authorization": "Basic dXNlcjpwdw=="}
        )
        assert_envelope(answer, 401, "unauthenticated")


@pytest_twisted.ensureDeferred
async def test_unexpected_failure_is_500_with_request_id_in_body_and_log(edge_web, monkeypatch):
    import shillings_web.validation as validation

    def explode(body):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(validation, "login", explode)
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        answer = await edge_web.client.post("/v1/login", {"email": "a@b.co", "password": "x"})
    finally:
        globalLogPublisher.removeObserver(events.append)
    body = assert_envelope(answer, 500, "internal_error")
    request_id = answer.header("X-Request-Id")
    assert body["status"]["request_id"] == request_id
    assert b"secret internals" not in answer.raw
    failures = [e for e in events if e.get("log_failure") is not None]
    assert any(e.get("request_id") == request_id for e in failures)


@pytest_twisted.ensureDeferred
async def test_app_500_passes_as_500_envelope(edge_web, fake_app):
    def respond(request):
        return pb.Response(status=pb.Status(code=500, reason="internal_error", message="x"))

    fake_app.factory.responder = respond
    answer = await edge_web.client.post("/v1/login", {"email": "a@b.co", "password": "pw"})
    body = assert_envelope(answer, 500, "internal_error")
    assert body["status"]["request_id"] == answer.header("X-Request-Id")


@pytest_twisted.ensureDeferred
async def test_one_log_line_per_request(edge_web):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        answer = await edge_web.client.get(
            "/v1/nope?x=1", headers={"X-Request-Id": "log-line-test"}
        )
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert answer.code == 404
    lines = [e for e in events if e.get("log_namespace") == "shillings_web.request"]
    lines = [e for e in lines if e.get("request_id") == "log-line-test"]
    assert len(lines) == 1
    event = lines[0]
    assert (event["method"], event["path"], event["status"]) == ("GET", "/v1/nope", 404)
    assert float(event["duration_ms"]) >= 0
    assert event["user_id"] is None


@pytest_twisted.ensureDeferred
async def test_log_line_carries_user_id(edge_web):
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        # A valid token reaches the (fake) app, whose 500 is answered as such.
        await edge_web.client.get("/v1/account", token=token(sub="77"))
    finally:
        globalLogPublisher.removeObserver(events.append)
    lines = [e for e in events if e.get("log_namespace") == "shillings_web.request"]
    assert [e["user_id"] for e in lines] == [77]


@pytest_twisted.ensureDeferred
async def test_healthz_ok_and_database_down(edge_web, fake_app):
    answer = await edge_web.client.get("/healthz")
    body = assert_envelope(answer, 200)
    assert body["checks"]["redis"] == "ok" and body["checks"]["app"] == "ok"

    def db_down(request):
        return pb.Response(status=pb.Status(code=200), health=pb.HealthResponse(database_ok=False))

    fake_app.factory.responder = db_down
    answer = await edge_web.client.get("/healthz")
    body = assert_envelope(answer, 503, "unavailable")
    assert body["checks"]["app"] == "database_down"


@pytest.mark.parametrize("path", ["/v1/account", "/healthz"])
@pytest_twisted.ensureDeferred
async def test_head_is_allowed_on_get_routes(edge_web, path):
    response = await treq.request(
        "HEAD", edge_web.client.base + path, pool=edge_web.client.pool, timeout=15
    )
    assert response.code in (200, 401)
    check_documented("HEAD", path, response.code)
    assert await response.content() == b""


@pytest_twisted.ensureDeferred
async def test_pay_whose_client_went_away_still_invalidates_both_caches(edge_web, fake_app):
    from twisted.internet import defer, reactor

    from tests.polling import poll_until

    pending = []

    def respond(request):
        d = defer.Deferred()
        pending.append((request, d))
        return d

    fake_app.factory.responder = respond
    for email in ("a@b.co", "r@x.co"):  # both users have a cache generation
        await edge_web.server.redis.execute("set", gen_key(email), "g0")
    events = []
    globalLogPublisher.addObserver(events.append)
    try:
        call = treq.post(
            edge_web.client.base + "/v1/pay",
            json={"receiver_email": "r@x.co", "amount": "1.00"},
            headers={"Authorization": [f"Bearer {token(sub='5')}"]},
            pool=edge_web.client.pool,
        )
        call.addErrback(lambda f: None)
        assert await poll_until(reactor, lambda: bool(pending), 5.0)
        call.cancel()  # the client goes away while the app server works

        def logged_closed():
            return any(
                e.get("log_namespace") == "shillings_web.request" and e.get("status") == 499
                for e in events
            )

        assert await poll_until(reactor, logged_closed, 5.0)
        request, answer = pending[0]
        assert request.command == pb.PAY and request.pay.amount == 100
        answer.callback(
            pb.Response(
                status=pb.Status(code=200),
                pay=pb.PayResponse(transaction_id="t1", sender_balance=0),
            )
        )
        redis = edge_web.server.redis

        async def generations():
            return await redis.execute("mget", [gen_key("a@b.co"), gen_key("r@x.co")])

        for _ in range(50):
            if await generations() == [None, None]:
                break
            await poll_until(reactor, lambda: False, 0.05, 0.05)
        assert await generations() == [None, None]
    finally:
        globalLogPublisher.removeObserver(events.append)


@pytest_twisted.ensureDeferred
async def test_lookalike_logins_share_the_accounts_rate_limit(web_with):
    web = await web_with(login_max_failures=3, login_window=120, trust_proxy=True)
    await signup(web.client, "x\u03c3@example.com")
    variants = ["X\u03a3@EXAMPLE.COM", "x\u03c2@example.com", "\uff38\u03c3@example.com"]
    for n, variant in enumerate(variants):
        answer = await web.client.post(
            "/v1/login",
            {"email": variant, "password": "wrong-pass"},
            headers={"X-Real-IP": f"10.0.1.{n}"},
        )
        assert (answer.code, answer.reason) == (401, "invalid_credentials")
    answer = await web.client.post(
        "/v1/login",
        {"email": "x\u03c3@example.com", "password": PASSWORD},
        headers={"X-Real-IP": "10.0.1.9"},
    )
    assert (answer.code, answer.reason) == (429, "too_many_attempts")
