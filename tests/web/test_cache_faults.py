"""The profile cache under partial failures: invalidations Redis refused, answers the app
server never gave. No stale balance and no revoked token is ever served."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from shillings_web.auth import verify_token
from shillings_web.cache import EPOCH_KEY, TOKEN_KEY, gen_key
from shillings_web.redisclient import RedisUnavailable
from tests.app.helpers import row_locked
from tests.polling import poll_until
from tests.web.conftest import user_with_token
from tests.web.test_api_money import balance


def refuse(web, *commands: str) -> set[str]:
    """Make the web process's Redis fail ``commands`` until the returned set is cleared."""
    failing = set(commands)
    redis = web.server.redis
    real_execute = redis.execute

    async def execute(command, *args):
        if command in failing:
            raise RedisUnavailable(f"{command} refused by the test")
        return await real_execute(command, *args)

    redis.execute = execute
    return failing


@contextlib.asynccontextmanager
async def refusing_writes(web) -> AsyncIterator[None]:
    """Redis answers reads and refuses writes (``min-replicas-to-write`` unmet) inside."""
    redis = web.server.redis
    await redis.execute("execute_command", "CONFIG", "SET", "min-replicas-to-write", "1")
    try:
        yield
    finally:
        await redis.execute("execute_command", "CONFIG", "SET", "min-replicas-to-write", "0")


@pytest_twisted.ensureDeferred
async def test_logout_while_redis_refuses_invalidation_never_serves_the_revoked_token(web):
    token = await user_with_token(web.client, "carol@example.com")
    assert await balance(web.client, token) == "0.00"  # cached now
    failing = refuse(web, "delete")
    answer = await web.client.post("/v1/logout", token=token)
    assert answer.code == 200, answer.raw
    cache = web.server.api.cache
    assert cache.pending == 2
    read = await web.client.get("/v1/account", token=token)
    assert (read.code, read.reason) == (401, "unauthenticated")

    failing.clear()
    assert await poll_until(reactor, lambda: cache.pending == 0, 5.0)
    entries = await web.server.redis.execute("keys", TOKEN_KEY.format("*"))
    assert entries == []
    read = await web.client.get("/v1/account", token=token)
    assert (read.code, read.reason) == (401, "unauthenticated")


@pytest_twisted.ensureDeferred
async def test_pay_while_redis_refuses_invalidation_leaves_no_stale_balance(web):
    alice = await user_with_token(web.client, "alice@example.com", topup="100.00")
    bob = await user_with_token(web.client, "bob@example.com")
    assert await balance(web.client, alice) == "100.00"
    assert await balance(web.client, bob) == "0.00"  # both cached
    failing = refuse(web, "delete")
    answer = await web.client.post(
        "/v1/pay", {"receiver_email": "bob@example.com", "amount": "5.00"}, token=alice
    )
    assert answer.code == 200, answer.raw
    assert await balance(web.client, alice) == "95.00"
    assert await balance(web.client, bob) == "5.00"

    failing.clear()
    cache = web.server.api.cache
    assert await poll_until(reactor, lambda: cache.pending == 0, 5.0)
    assert await web.server.redis.execute("exists", gen_key("bob@example.com")) == 0
    assert await balance(web.client, bob) == "5.00"
    assert await balance(web.client, bob) == "5.00"  # from the cache again


@pytest_twisted.ensureDeferred
async def test_pay_whose_answer_times_out_has_no_late_effect_and_no_stale_cache(
    app_server, web_with
):
    """The web gives up after 1 s while the receiver's row is locked for 1.6 s: the client
    is told the outcome is unknown, the app server rolls the late payment back, both
    balances read fresh, and the retry with the same key pays exactly once."""
    web = await web_with(request_timeout=1.0)
    alice = await user_with_token(web.client, "alice@example.com", topup="100.00")
    bob = await user_with_token(web.client, "bob@example.com")
    assert await balance(web.client, alice) == "100.00"
    assert await balance(web.client, bob) == "0.00"
    bob_id = (await web.client.get("/v1/account", token=bob)).body["user"]["user_id"]
    body = {"receiver_email": "bob@example.com", "amount": "5.00"}
    headers = {"Idempotency-Key": "slow-pay-1"}
    with row_locked(app_server.dsn, bob_id):
        answer = await web.client.post("/v1/pay", body, token=alice, headers=headers)
        assert (answer.code, answer.reason) == (503, "unavailable")
        assert "outcome is unknown" in answer.body["status"]["message"]
        await deferLater(reactor, 0.6, lambda: None)
    assert await poll_until(reactor, lambda: app_server.factory.in_flight == 0, 5.0)
    assert await balance(web.client, alice) == "100.00"
    assert await balance(web.client, bob) == "0.00"

    retry = await web.client.post("/v1/pay", body, token=alice, headers=headers)
    assert retry.code == 200, retry.raw
    again = await web.client.post("/v1/pay", body, token=alice, headers=headers)
    assert again.body["transaction_id"] == retry.body["transaction_id"]
    assert await balance(web.client, alice) == "95.00"
    assert await balance(web.client, bob) == "5.00"


@pytest_twisted.ensureDeferred
async def test_after_redis_starts_empty_no_process_serves_what_another_could_not_invalidate(
    web_with,
):
    """Redis comes back empty; web process Y has not reconnected yet (its INCR fails) when
    it answers a pay, while X already caches again. For ``cache_grace`` seconds after the
    new epoch nobody reads the cache, and Y replays its INCR within that time."""
    x = await web_with(cache_grace=1.5)
    y = await web_with(cache_grace=1.5)
    alice = await user_with_token(x.client, "alice@example.com", topup="100.00")
    bob = await user_with_token(x.client, "bob@example.com")
    await x.server.redis.execute("flushdb")  # Redis restarted empty
    assert await balance(x.client, alice) == "100.00"
    assert await balance(x.client, bob) == "0.00"
    failing = refuse(y, "delete")
    paid = await y.client.post(
        "/v1/pay", {"receiver_email": "bob@example.com", "amount": "1.00"}, token=alice
    )
    assert paid.code == 200, paid.raw
    assert await balance(x.client, alice) == "99.00"
    assert await balance(x.client, bob) == "1.00"

    failing.clear()
    assert await poll_until(reactor, lambda: y.server.api.cache.pending == 0, 5.0)
    await deferLater(reactor, 1.6, lambda: None)
    assert await balance(x.client, alice) == "99.00"
    assert await balance(x.client, alice) == "99.00"
    assert await x.server.redis.execute("keys", TOKEN_KEY.format("*")) != []


@pytest_twisted.ensureDeferred
async def test_a_fill_from_before_a_flush_is_never_served(web):
    """A read whose fill lands after Redis was flushed stores the old epoch and generation;
    generations are random, so whatever happens next that entry is never served."""
    token = await user_with_token(web.client, "dora@example.com", topup="10.00")
    cache = web.server.api.cache
    identity = verify_token(token, web.config.jwt_secret)
    before = await cache.lookup(identity)
    assert before.gen is not None and before.epoch is not None
    await web.server.redis.execute("flushdb")
    await web.client.post("/v1/topup", {"amount": "1.00"}, token=token)
    assert await balance(web.client, token) == "11.00"
    stale = {"user_id": 0, "balance": "10.00"}
    await cache.fill(identity, before, stale)
    assert await balance(web.client, token) == "11.00"
    assert await balance(web.client, token) == "11.00"


async def _cached_parties(web) -> tuple[str, str, str]:
    """Alice (100.00), Bob (0.00) and Carol, each profile read twice through ``web``."""
    alice = await user_with_token(web.client, "alice@example.com", topup="100.00")
    bob = await user_with_token(web.client, "bob@example.com")
    carol = await user_with_token(web.client, "carol@example.com")
    for _ in range(2):
        for token, amount in ((alice, "100.00"), (bob, "0.00"), (carol, "0.00")):
            assert await balance(web.client, token) == amount
    return alice, bob, carol


async def _pay_and_logout(y, alice: str, carol: str) -> None:
    """Through ``y`` while Redis refuses writes: Alice pays Bob 5.00 and Carol logs out."""
    paid = await y.client.post(
        "/v1/pay", {"receiver_email": "bob@example.com", "amount": "5.00"}, token=alice
    )
    assert paid.code == 200, paid.raw
    logout = await y.client.post("/v1/logout", token=carol)
    assert logout.code == 200, logout.raw
    assert y.server.api.cache.pending > 0  # Redis refused Y's invalidations


async def _served_fresh(x, alice: str, bob: str, carol: str) -> None:
    for _ in range(2):
        assert await balance(x.client, alice) == "95.00"
        assert await balance(x.client, bob) == "5.00"
        read = await x.client.get("/v1/account", token=carol)
        assert (read.code, read.reason) == (401, "unauthenticated")


@pytest_twisted.ensureDeferred
async def test_while_redis_refuses_writes_no_process_serves_what_another_could_not_invalidate(
    web_with,
):
    """Redis answers reads but refuses writes (``min-replicas-to-write`` unmet; a READONLY
    demoted primary is alike): Y answers a pay and a logout whose invalidations Redis
    refused. X, which had both users' profiles and the token cached, must serve neither
    the old balances nor the revoked token. Before, its plain ``MGET`` was served and it
    did both for as long as Redis refused writes."""
    x = await web_with()
    y = await web_with()
    alice, bob, carol = await _cached_parties(x)
    hits = x.server.api.cache.outcomes["hit"]
    assert await balance(x.client, alice) == "100.00"
    assert x.server.api.cache.outcomes["hit"] == hits + 1  # X serves from the cache
    async with refusing_writes(x):
        await _pay_and_logout(y, alice, carol)
        await _served_fresh(x, alice, bob, carol)
    assert await poll_until(reactor, lambda: y.server.api.cache.pending == 0, 5.0)
    assert await balance(x.client, alice) == "95.00"


@contextlib.asynccontextmanager
async def _y_lost_its_invalidations(web_with) -> AsyncIterator[tuple[Any, tuple[str, str, str]]]:
    """Web process X with Alice, Bob and Carol cached; inside, Redis refuses writes, and
    web process Y has answered a pay (Alice to Bob, 5.00) and Carol's logout, then
    stopped: the invalidations Redis refused died with it."""
    x = await web_with()
    y = await web_with()
    alice, bob, carol = await _cached_parties(x)
    async with refusing_writes(x):
        await _pay_and_logout(y, alice, carol)
        await y.server.stop()
        yield x, (alice, bob, carol)


@pytest_twisted.ensureDeferred
async def test_a_process_restarted_after_redis_refused_its_invalidations_outdates_the_cache(
    web_with,
):
    """Y's pay and logout invalidations are refused, then Y stops before Redis takes writes
    again, losing them; X read nothing meanwhile. The restarted Y outdates every entry
    before it reads, so X serves neither the old balances nor the revoked token. Before, X
    served them until the entries' TTL (the tokens' remaining life)."""
    async with _y_lost_its_invalidations(web_with) as (x, (alice, bob, carol)):
        pass
    y_again = await web_with()
    assert y_again.server.api.cache.pending == 0  # its start's outdating was delivered
    await _served_fresh(x, alice, bob, carol)


@pytest_twisted.ensureDeferred
async def test_a_process_that_saw_redis_refuse_outdates_the_cache_before_reading_again(
    web_with,
):
    """As above, but Y never comes back. X was asked for a profile while Redis refused
    writes (its read was refused, so it went to the app server): once Redis takes writes
    again, X outdates every entry before it reads one. Before, X served the old balances
    and the revoked token as soon as Redis took writes again."""
    async with _y_lost_its_invalidations(web_with) as (x, (alice, bob, carol)):
        assert await balance(x.client, alice) == "95.00"  # read refused: from the app
        assert x.server.api.cache.pending == 1  # to outdate every entry
    await _served_fresh(x, alice, bob, carol)


@pytest_twisted.ensureDeferred
async def test_outdating_every_entry_keeps_a_grace_period_under_way(web_with):
    """After Redis started empty no process reads the cache for ``cache_grace`` seconds;
    ``bump_all`` (an answer lost) in that time outdates the entries but does not end the
    grace period. Before, it started a settled epoch, ending it at once."""
    x = await web_with(cache_grace=30.0)
    token = await user_with_token(x.client, "dora@example.com", topup="10.00")
    await x.server.redis.execute("flushdb")  # Redis restarted empty
    cache = x.server.api.cache
    identity = verify_token(token, x.config.jwt_secret)
    assert (await cache.lookup(identity)).gen is None  # a new epoch, in its grace period
    started = await x.server.redis.execute("get", EPOCH_KEY)
    await cache.bump_all()
    assert cache.pending == 0
    now = await x.server.redis.execute("get", EPOCH_KEY)
    assert now[:8] != started[:8] and now[8:] == started[8:]  # same start time
    assert (await cache.lookup(identity)).gen is None  # still in its grace period


@pytest_twisted.ensureDeferred
async def test_outdating_every_entry_keeps_the_primary_an_epoch_names(web):
    """Through Sentinel, a process that finds an epoch naming another primary starts a new
    one with its grace period (the new primary may lack the old one's last writes); the
    outdating that follows a failed read must not rename the old epoch to the new primary."""
    redis = web.server.redis
    await redis.execute("set", EPOCH_KEY, "0badcafe@10.0.0.9/6379:5.0")
    await web.server.api.cache.bump_all()
    now = await redis.execute("get", EPOCH_KEY)
    assert now[:8] != "0badcafe" and now[8:] == "@10.0.0.9/6379:5.0"


@pytest_twisted.ensureDeferred
async def test_a_process_that_served_nothing_while_redis_refused_writes_outdates_the_cache(
    web_with,
):
    """X serves no request while Redis refuses writes; its watch's write probe is refused,
    so once Redis takes writes again X outdates every entry before reading one. Before, X
    (having read nothing meanwhile) served the old balance and the revoked token after Y,
    which held the refused invalidations, was stopped (adversarial test: seen for 60 s)."""
    x = await web_with()
    y = await web_with()
    alice, bob, carol = await _cached_parties(x)
    async with refusing_writes(x):
        await _pay_and_logout(y, alice, carol)
        assert await poll_until(reactor, lambda: x.server.api.cache.pending == 1, 5.0)
        await y.server.stop()  # gives up on the invalidations after its grace
    await _served_fresh(x, alice, bob, carol)


@pytest_twisted.ensureDeferred
async def test_a_stopping_process_delivers_its_invalidations_within_its_grace(web_with):
    """Y stops while Redis refuses its invalidations and Redis takes writes again before
    Y's grace is over: Y delivers them before it exits. Before, it dropped them."""
    x = await web_with()
    y = await web_with()
    alice, _, carol = await _cached_parties(x)
    async with refusing_writes(x):
        await _pay_and_logout(y, alice, carol)
        stopped = defer.ensureDeferred(y.server.stop())
        await deferLater(reactor, 0.3, lambda: None)
    await stopped
    redis = x.server.redis
    assert await redis.execute("exists", gen_key("bob@example.com")) == 0
    assert await redis.execute("exists", gen_key("carol@example.com")) == 0
    assert y.server.api.cache.owed == 0
