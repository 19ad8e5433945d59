"""Redis cannot be used against the service (issue 10 points 3-4): no request pattern leaves
a key without a TTL, a Redis that refuses writes fails logins closed and shows in /healthz,
and no input can poison the cache's invalidation machinery."""

from __future__ import annotations

import shutil
import tempfile

import pytest_twisted
from twisted.internet import reactor

from shillings_web.auth import verify_token
from shillings_web.cache import EPOCH_KEY, MAX_PENDING, gen_key
from tests.harness import start_redis
from tests.polling import poll_until
from tests.web.conftest import PASSWORD, make_config, start_web, user_with_token
from tests.web.test_api_money import balance
from tests.web.test_cache_faults import refuse

SURROGATE_EMAIL = "\ud800x@example.com"


@pytest_twisted.ensureDeferred
async def test_no_request_pattern_leaves_a_key_without_ttl(web_with):
    web = await web_with(trust_proxy=True)
    alice = await user_with_token(web.client, "alice@example.com", topup="50.00")
    for n in range(30):  # pays to receivers that do not exist
        answer = await web.client.post(
            "/v1/pay", {"receiver_email": f"ghost{n}@example.com", "amount": "1.00"}, token=alice
        )
        assert (answer.code, answer.reason) == (404, "receiver_not_found")
    assert await balance(web.client, alice) == "50.00"
    for n in range(3):
        await web.client.post("/v1/login", {"email": f"x{n}@example.com", "password": "wrong-p"})
    await web.client.get("/healthz")
    await web.client.post("/v1/logout", token=alice)
    redis = web.server.redis
    keys = await redis.execute("keys", "*")
    assert keys
    immortal = [k for k in keys if k != EPOCH_KEY and int(await redis.execute("ttl", k)) < 0]
    assert immortal == []
    generations = [k for k in keys if k.startswith("shl:gen:")]
    assert len(generations) <= 1, generations  # only users who read their profile have one


@pytest_twisted.ensureDeferred
async def test_a_redis_that_refuses_writes_fails_logins_closed_and_is_unhealthy(app_server):
    root = tempfile.mkdtemp(prefix="shlr-")
    redis = start_redis(root)
    web = await start_web(
        make_config(
            [app_server.address], redis.socket, app_server.config.jwt_secret, trust_proxy=True
        )
    )
    client = web.server.redis
    try:
        alice = await user_with_token(web.client, "alice@example.com", topup="20.00")
        await user_with_token(web.client, "bob@example.com")
        assert await balance(web.client, alice) == "20.00"
        await client.execute("execute_command", "CONFIG", "SET", "maxmemory-policy", "noeviction")
        await client.execute("execute_command", "CONFIG", "SET", "maxmemory", "1")  # "full"

        wrong = [
            await web.client.post(
                "/v1/login",
                {"email": "alice@example.com", "password": f"guess-{n}"},
                headers={"X-Real-IP": "10.7.0.1"},
            )
            for n in range(25)
        ]
        assert {(a.code, a.reason) for a in wrong} == {(503, "unavailable")}
        right = await web.client.post(
            "/v1/login", {"email": "alice@example.com", "password": PASSWORD}
        )
        assert (right.code, right.reason) == (503, "unavailable")
        health = await web.client.get("/healthz")
        assert health.code == 503
        assert health.body["checks"]["redis"] == "refusing_writes"
        # Everything else still works, and never stale: invalidations (DEL) pass when full.
        paid = await web.client.post(
            "/v1/pay", {"receiver_email": "bob@example.com", "amount": "5.00"}, token=alice
        )
        assert paid.code == 200, paid.raw
        assert await balance(web.client, alice) == "15.00"
        assert await client.execute("exists", gen_key("alice@example.com")) == 0
        assert web.server.api.cache.pending == 1  # only the outdating after a refused read

        await client.execute("execute_command", "CONFIG", "SET", "maxmemory", "0")
        assert await balance(web.client, alice) == "15.00"
        assert web.server.api.cache.pending == 0
        assert (await web.client.get("/healthz")).code == 200
        right = await web.client.post(
            "/v1/login", {"email": "alice@example.com", "password": PASSWORD}
        )
        assert right.code == 200
    finally:
        await web.server.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest_twisted.ensureDeferred
async def test_an_email_that_cannot_be_encoded_never_poisons_the_cache(web):
    token = await user_with_token(web.client, "erin@example.com", topup="10.00")
    answer = await web.client.post(
        "/v1/pay", {"receiver_email": SURROGATE_EMAIL, "amount": "1.00"}, token=token
    )
    assert answer.code != 200
    cache = web.server.api.cache
    await cache.bump(SURROGATE_EMAIL, "ERIN@example.com")
    assert cache.pending == 0
    assert gen_key(SURROGATE_EMAIL).isascii()
    assert await balance(web.client, token) == "10.00"
    identity = verify_token(token, web.config.jwt_secret)
    assert (await cache.lookup(identity)).user is not None  # the cache is read again


@pytest_twisted.ensureDeferred
async def test_pending_invalidations_are_bounded_and_replaced_by_a_cache_reset(web):
    token = await user_with_token(web.client, "fred@example.com", topup="10.00")
    assert await balance(web.client, token) == "10.00"
    identity = verify_token(token, web.config.jwt_secret)
    cache = web.server.api.cache
    cached = await cache.lookup(identity)
    assert cached.user is not None
    failing = refuse(web, "delete")
    emails = [f"user{n}@example.com" for n in range(MAX_PENDING + 200)]
    for start in range(0, len(emails), 100):
        await cache.bump(*emails[start : start + 100])
    assert cache.pending <= MAX_PENDING
    assert await balance(web.client, token) == "10.00"  # from the app server meanwhile

    failing.clear()
    assert await poll_until(reactor, lambda: cache.pending == 0, 5.0)
    after = await cache.lookup(identity)
    assert after.epoch != cached.epoch  # every entry from before was outdated
    assert await balance(web.client, token) == "10.00"
