"""Faults: Redis stopped mid-test, app server stopped and restarted, app server hanging."""

from __future__ import annotations

import shutil
import tempfile
import time

import jwt
import pytest_twisted
from twisted.internet import defer, reactor

from shillings_proto import pb
from tests.harness import start_redis
from tests.polling import poll_until
from tests.web.conftest import (
    TEST_SECRET,
    login,
    make_config,
    start_web,
    user_with_token,
)
from tests.web.fakeapp import FakeApp, ok_health


async def eventually(check, within: float) -> bool:
    """Poll an async ``check`` every 0.1 s until it is true, at most ``within`` seconds."""
    for _ in range(int(within / 0.1)):
        if await check():
            return True
        await poll_until(reactor, lambda: False, 0.1, step=0.1)
    return bool(await check())


@pytest_twisted.ensureDeferred
async def test_redis_stopped_mid_test_still_serving(app_server):
    root = tempfile.mkdtemp(prefix="shlr-")
    redis = start_redis(root)
    web = await start_web(
        make_config([app_server.address], redis.socket, app_server.config.jwt_secret)
    )
    try:
        alice = await user_with_token(web.client, "alice@example.com", topup="20.00")
        bob = await user_with_token(web.client, "bob@example.com")
        for token in (alice, bob):  # prime the caches
            assert (await web.client.get("/v1/account", token=token)).code == 200
        assert (await web.client.get("/healthz")).code == 200

        redis.stop()
        assert await poll_until(reactor, lambda: not web.server.redis.connected, 5.0)

        health = await web.client.get("/healthz")
        assert (health.code, health.reason) == (503, "unavailable")
        assert health.body["checks"]["redis"] == "down"
        assert health.body["checks"]["app"] == "ok"
        answer = await web.client.post(
            "/v1/pay", {"receiver_email": "bob@example.com", "amount": "5.00"}, token=alice
        )
        assert answer.code == 200
        for token, expected in ((alice, "15.00"), (bob, "5.00")):
            answer = await web.client.get("/v1/account", token=token)
            assert answer.code == 200 and answer.body["user"]["balance"] == expected
        assert (await web.client.get("/v1/transactions", token=bob)).code == 200
        # Login fails closed without Redis: no password is checked unless counted.
        answer = await web.client.post(
            "/v1/login", {"email": "bob@example.com", "password": "correct horse battery"}
        )
        assert (answer.code, answer.reason, answer.header("Retry-After")) == (
            503,
            "unavailable",
            "1",
        )

        # Redis comes back (empty): the web process reconnects by itself.
        redis = start_redis(root)

        async def healthy() -> bool:
            return (await web.client.get("/healthz")).code == 200

        assert await eventually(healthy, 10.0)
        answer = await web.client.get("/v1/account", token=alice)
        assert answer.body["user"]["balance"] == "15.00"
        await login(web.client, "bob@example.com")
    finally:
        await web.server.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest_twisted.ensureDeferred
async def test_app_server_stopped_gives_503_then_recovers(app_server, web_with):
    web = await web_with(request_timeout=1.0)
    token = await user_with_token(web.client, "alice@example.com", topup="3.00")
    await app_server.stop()
    requests = (
        ("GET", "/v1/transactions", None),
        ("POST", "/v1/topup", {"amount": 1}),
        ("POST", "/v1/login", {"email": "alice@example.com", "password": "whatever1"}),
    )
    # All at once (each waits out its deadline). The client gives up after 15 s, so a hang
    # would fail here too.
    answers = await defer.gatherResults(
        [
            defer.ensureDeferred(web.client.request(method, path, json_body=body, token=token))
            for method, path, body in requests
        ]
    )
    for (_, path, _), answer in zip(requests, answers, strict=True):
        assert (answer.code, answer.reason) == (503, "unavailable"), path
        assert answer.body["status"]["request_id"] == answer.header("X-Request-Id")
    health = await web.client.get("/healthz")
    assert health.code == 503 and health.body["checks"]["app"] == "down"

    await app_server.start()

    async def serving() -> bool:
        return (await web.client.get("/v1/transactions", token=token)).code == 200

    assert await eventually(serving, 10.0)
    assert (await web.client.get("/healthz")).code == 200
    answer = await web.client.post("/v1/topup", {"amount": 1}, token=token)
    assert answer.code == 200 and answer.body["balance"] == "4.00"


@pytest_twisted.ensureDeferred
async def test_hanging_app_server_gives_503_within_the_timeout(fake_app, web_redis_socket):
    web = await start_web(
        make_config([fake_app.address], web_redis_socket, TEST_SECRET, request_timeout=0.5)
    )
    try:
        fake_app.factory.responder = fake_app.factory.hang
        now = int(time.time())
        token = jwt.encode(
            {"sub": "5", "email": "e@x.co", "iat": now, "exp": now + 60, "jti": "hang-1"},
            TEST_SECRET,
        )
        answer = await web.client.get("/v1/transactions", token=token)
        assert (answer.code, answer.reason) == (503, "unavailable")
        assert len(fake_app.factory.hanging) == 1
        health = await web.client.get("/healthz")
        assert health.code == 503 and health.body["checks"]["app"] == "down"
    finally:
        await web.server.stop()


@pytest_twisted.ensureDeferred
async def test_healthz_is_ok_while_any_app_server_reaches_the_database(web_redis_socket):
    """With two app servers, one cut off from MySQL (or stopped) does not make the web
    process unhealthy; both cut off does."""

    def db_down(request):
        return pb.Response(status=pb.Status(code=200), health=pb.HealthResponse(database_ok=False))

    first, second = FakeApp(reactor), FakeApp(reactor)
    await first.start()
    await second.start()
    web = await start_web(
        make_config([first.address, second.address], web_redis_socket, TEST_SECRET)
    )
    try:
        assert await poll_until(reactor, lambda: web.server.pool.live_connections == 4, 5.0)
        first.factory.responder = db_down
        for _ in range(4):  # whichever connection the pool would pick
            health = await web.client.get("/healthz")
            assert health.code == 200, health.raw
        second.factory.responder = db_down
        health = await web.client.get("/healthz")
        assert (health.code, health.body["checks"]["app"]) == (503, "database_down")
        second.factory.responder = ok_health
        await first.stop()
        health = await web.client.get("/healthz")
        assert health.code == 200, health.raw
    finally:
        await web.server.stop()
        await second.stop()
