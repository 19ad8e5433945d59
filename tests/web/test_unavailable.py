"""503 answers say what is true (issue 10 §2), and a web process holds a request while no
app server is connected, within the request's deadline (issue 11 §3)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jwt
import pytest_twisted
from twisted.internet import defer, reactor

from tests.polling import poll_until
from tests.web.conftest import (
    TEST_SECRET,
    login,
    make_config,
    signup,
    start_web,
    user_with_token,
)
from tests.web.fakeapp import FakeApp

UNKNOWN = "the outcome is unknown: retry with the same Idempotency-Key"
NO_EFFECT = "the request had no effect"


def token(secret: str = TEST_SECRET, user_id: int = 9) -> str:
    now = int(time.time())
    claims = {"sub": str(user_id), "email": "c@d.co", "iat": now, "exp": now + 600, "jti": "u1"}
    return jwt.encode(claims, secret, algorithm="HS256")


def assert_503(answer: Any, *, says: str, never: tuple[str, ...] = ()) -> None:
    assert (answer.code, answer.reason) == (503, "unavailable"), answer.raw
    message = answer.body["status"]["message"]
    assert says in message, message
    for text in never:
        assert text not in message, message
    assert answer.header("Retry-After") is not None


@pytest_twisted.ensureDeferred
async def test_no_app_server_connected_means_no_effect(redis_server):
    """Each request waits its whole deadline for a connection (the three at once), then
    is refused saying it had no effect."""
    app = FakeApp(reactor)
    await app.start()
    address = app.address
    await app.stop()
    config = make_config([address], redis_server.socket, TEST_SECRET, request_timeout=0.5)
    web = await start_web(config, app=False)
    try:
        pay = {"receiver_email": "b@c.de", "amount": "1.00"}
        pays, account = await defer.gatherResults(
            [
                defer.gatherResults(
                    [
                        defer.ensureDeferred(
                            web.client.post("/v1/pay", pay, token=token(), headers=headers)
                        )
                        for headers in ({}, {"Idempotency-Key": "k1"})
                    ]
                ),
                defer.ensureDeferred(web.client.get("/v1/account", token=token())),
            ]
        )
        for answer in pays:
            assert_503(answer, says=NO_EFFECT, never=("unknown",))
        assert_503(account, says=NO_EFFECT, never=("unknown", "Idempotency"))
    finally:
        await web.server.stop()


@pytest_twisted.ensureDeferred
async def test_lost_answer_is_unknown_only_for_money(edge_web, fake_app):
    """The app server never answers: a pay's outcome is unknown; a read just failed."""
    fake_app.factory.responder = fake_app.factory.hang
    web = await start_web(dataclasses.replace(edge_web.config, request_timeout=0.5))
    try:
        hold_id = "5b0c6a1e-0000-4000-8000-000000000001"
        money = [  # each waits out its deadline: all at once
            defer.ensureDeferred(web.client.post(path, body, token=token()))
            for path, body in (
                ("/v1/pay", {"receiver_email": "b@c.de", "amount": "1.00"}),
                ("/v1/refunds", {"transaction_id": hold_id, "amount": "1.00"}),
                ("/v1/holds", {"receiver_email": "b@c.de", "amount": "1.00"}),
                (f"/v1/holds/{hold_id}/capture", {"amount": "1.00"}),
                (f"/v1/holds/{hold_id}/void", {}),
            )
        ]
        others = [
            defer.ensureDeferred(web.client.get("/v1/account", token=token())),
            defer.ensureDeferred(
                web.client.post("/v1/login", {"email": "a@b.co", "password": "x" * 8})
            ),
        ]
        for answer in await defer.gatherResults(money):
            assert_503(answer, says=UNKNOWN)
        for answer in await defer.gatherResults(others):
            assert_503(answer, says="try again", never=("unknown", "Idempotency"))
    finally:
        await web.server.stop()


@pytest_twisted.ensureDeferred
async def test_database_down_reads_and_login_say_no_effect(make_server, web_redis_socket):
    """MySQL unreachable: the app refuses before any COMMIT, so nothing speaks of an unknown
    outcome or of idempotency keys (issue 10 §2)."""
    server = await make_server(mysql_dsn="mysql://root@127.0.0.1:1/nowhere")
    config = make_config([server.address], web_redis_socket, server.config.jwt_secret)
    web = await start_web(config)
    try:
        read = await web.client.get("/v1/account", token=token(server.config.jwt_secret))
        assert_503(read, says="database unavailable", never=("unknown", "Idempotency"))
        assert NO_EFFECT in read.body["status"]["message"]
        answer = await web.client.post("/v1/login", {"email": "a@b.co", "password": "x" * 8})
        assert_503(answer, says=NO_EFFECT, never=("unknown", "Idempotency"))
        pay = await web.client.post(
            "/v1/pay",
            {"receiver_email": "b@c.de", "amount": "1.00"},
            token=token(server.config.jwt_secret),
        )
        assert_503(pay, says=NO_EFFECT, never=("unknown",))
    finally:
        await web.server.stop()


@pytest_twisted.ensureDeferred
async def test_password_queue_full_answers_503_with_retry_after(make_server, web_redis_socket):
    server = await make_server(password_workers=1, password_queue=0)  # no job may wait
    config = make_config([server.address], web_redis_socket, server.config.jwt_secret)
    web = await start_web(config)
    hasher = server.factory.ctx.passwords
    try:
        await signup(web.client, "busy@example.com")
        body = {"email": "busy@example.com", "password": "correct horse battery"}
        await hasher._turns.acquire()  # the test holds the one worker
        try:
            first = defer.ensureDeferred(web.client.post("/v1/login", body))
            assert await poll_until(reactor, lambda: hasher.pending == 1, 5.0)
            answer = await web.client.post("/v1/login", body)  # nowhere to wait: refused
        finally:
            hasher._turns.release()
        assert (await first).code == 200
        assert_503(answer, says="too many password checks", never=("unknown", "Idempotency"))
        assert answer.header("Retry-After") == "1"
        await login(web.client, "busy@example.com")
    finally:
        await web.server.stop()


@pytest_twisted.ensureDeferred
async def test_requests_wait_for_the_app_server_to_come_back(web_with, app_server):
    """The only app server is down when the requests arrive and back 1 s later: they are
    held, not failed, and each is served once (an unkeyed top-up too)."""
    web = await web_with(request_timeout=5.0)
    alice = await user_with_token(web.client, "alice@example.com", topup="10.00")
    await app_server.stop()
    assert await poll_until(reactor, lambda: web.server.pool.live_connections == 0, 5.0)
    began = time.monotonic()
    calls = [
        defer.ensureDeferred(web.client.post("/v1/topup", {"amount": "1.00"}, token=alice)),
        defer.ensureDeferred(
            web.client.post(
                "/v1/topup", {"amount": "2.00"}, token=alice, headers={"Idempotency-Key": "k"}
            )
        ),
        defer.ensureDeferred(web.client.get("/v1/transactions", token=alice)),
        defer.ensureDeferred(
            web.client.post(
                "/v1/login", {"email": "alice@example.com", "password": "correct horse battery"}
            )
        ),
    ]
    await poll_until(reactor, lambda: False, 1.0, step=0.1)
    assert not any(d.called for d in calls)
    await app_server.start()
    answers = await defer.gatherResults(calls)
    assert [a.code for a in answers] == [200, 200, 200, 200], [a.raw for a in answers]
    assert time.monotonic() - began < 5.0
    account = await web.client.get("/v1/account", token=alice)
    assert account.body["user"]["balance"] == "13.00"


@pytest_twisted.ensureDeferred
async def test_app_restarts_under_a_stream_of_requests_fail_none(web_with, app_server):
    """Reads, keyed top-ups and unkeyed payments flow while the only app server is stopped
    (draining what it read, GoAway for the rest) and started again, twice: every request
    is answered 200, and the balances are exactly what the answers say."""
    web = await web_with(request_timeout=5.0)
    alice = await user_with_token(web.client, "alice@example.com", topup="100.00")
    bob = await user_with_token(web.client, "bob@example.com")
    running = [True]
    answers: list[tuple[str, int, bytes]] = []

    async def stream(kind: str) -> None:
        n = 0
        while running[0]:
            n += 1
            if kind == "read":
                answer = await web.client.get("/v1/account", token=bob)
            elif kind == "keyed":
                answer = await web.client.post(
                    "/v1/topup",
                    {"amount": "1.00"},
                    token=alice,
                    headers={"Idempotency-Key": f"top-{n}"},
                )
            else:
                answer = await web.client.post(
                    "/v1/pay", {"receiver_email": "bob@example.com", "amount": "0.01"}, token=alice
                )
            answers.append((kind, answer.code, answer.raw))

    def count(kind: str) -> int:
        return sum(1 for k, _, _ in answers if k == kind)

    async def flowing() -> None:
        """Wait until every kind of request has been answered again (bounded)."""
        before = {kind: count(kind) for kind in ("read", "keyed", "unkeyed")}
        assert await poll_until(
            reactor, lambda: all(count(k) > n + 1 for k, n in before.items()), 30.0
        )

    streams = [defer.ensureDeferred(stream(k)) for k in ("read", "keyed", "unkeyed", "read")]
    for _ in range(2):
        await flowing()
        await app_server.stop(drain_timeout=5.0)
        await poll_until(reactor, lambda: False, 0.3, step=0.1)
        await app_server.start()
    await flowing()
    running[0] = False
    await defer.gatherResults(streams)
    assert [a for a in answers if a[1] != 200] == []
    keyed, paid = count("keyed"), count("unkeyed")
    account = await web.client.get("/v1/account", token=alice)
    cents = 10_000 + keyed * 100 - paid
    assert account.body["user"]["balance"] == f"{cents // 100}.{cents % 100:02d}"
