"""A web process's metrics, scraped over HTTP from its metrics listener after known traffic
(in front of the real app server and Redis)."""

from __future__ import annotations

import socket

import pytest_twisted
import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater

from shillings_proto.metrics import MetricsListener
from tests.polling import poll_until
from tests.scrape import scrape
from tests.web.conftest import PASSWORD, login, signup, user_with_token
from tests.web.test_cache_faults import refuse

METRICS = "tcp:0:interface=127.0.0.1"
REQUESTS = "shillings_web_http_requests_total"


@pytest_twisted.ensureDeferred
async def test_requests_cache_and_connections_are_counted(web_with):
    web = await web_with(metrics_listen=METRICS)
    alice = await user_with_token(web.client, "alice@example.com", topup="100.00")
    await user_with_token(web.client, "bob@example.com")
    for amount in ("1.00", "2.50", "12.34"):
        body = {"receiver_email": "bob@example.com", "amount": amount}
        assert (await web.client.post("/v1/pay", body, token=alice)).code == 200
    body = {"receiver_email": "bob@example.com", "amount": "1000.00"}
    assert (await web.client.post("/v1/pay", body, token=alice)).reason == "insufficient_funds"
    for _ in range(2):
        assert (await web.client.get("/v1/account", token=alice)).code == 200
    assert (await web.client.get("/v1/nowhere")).code == 404
    assert (await web.client.get("/metrics")).code == 404  # never on the API port
    m = await scrape(web.server.metrics_port)

    assert m(REQUESTS, route="/v1/signup", method="POST", status="201") == 2
    assert m(REQUESTS, route="/v1/login", method="POST", status="200") == 2
    assert m(REQUESTS, route="/v1/topup", method="POST", status="200") == 1
    assert m(REQUESTS, route="/v1/pay", method="POST", status="200") == 3
    assert m(REQUESTS, route="/v1/pay", method="POST", status="422") == 1
    assert m(REQUESTS, route="/v1/account", method="GET", status="200") == 2
    assert m(REQUESTS, route="other", method="GET", status="404") == 2
    histogram = "shillings_web_http_request_duration_seconds"
    assert m(histogram + "_count", route="/v1/pay") == 4
    assert m(histogram + "_bucket", route="/v1/pay", le="+Inf") == 4
    assert m("shillings_web_cache_lookups_total", outcome="miss") == 1
    assert m("shillings_web_cache_lookups_total", outcome="hit") == 1
    assert m("shillings_web_cache_lookups_total", outcome="bypass") == 0
    assert m("shillings_web_http_in_flight") == 0
    assert m("shillings_web_app_connections") == web.config.app_connections
    assert m("shillings_web_app_in_flight") == 0
    assert m("shillings_web_app_waiting") == 0
    assert m("shillings_web_redis_up") == 1
    assert m("shillings_web_cache_invalidations_pending") == 0
    for limit in ("login", "signup"):
        for cause in ("limit", "unavailable"):
            assert m("shillings_web_limiter_refusals_total", limit=limit, cause=cause) == 0


@pytest_twisted.ensureDeferred
async def test_limiter_refusals_and_cache_bypasses_are_counted(web_with):
    """Signups past the limit and guesses past the login limit are refused (429) and
    counted per limit; while Redis's epoch is younger than the cache grace, account reads
    bypass the cache."""
    web = await web_with(
        metrics_listen=METRICS, signup_max=2, login_max_failures=2, cache_grace=600.0
    )
    await signup(web.client, "carol@example.com")
    await signup(web.client, "dave@example.com")
    token = await login(web.client, "dave@example.com")
    body = {"first_name": "E", "last_name": "F", "email": "erin@example.com"}
    body |= {"phone": "+15550001111", "password": PASSWORD}
    assert (await web.client.post("/v1/signup", body)).reason == "too_many_signups"
    guess = {"email": "carol@example.com", "password": "wrong password!"}
    codes = [(await web.client.post("/v1/login", guess)).code for _ in range(4)]
    assert codes == [401, 401, 429, 429]
    for _ in range(3):
        assert (await web.client.get("/v1/account", token=token)).code == 200
    m = await scrape(web.server.metrics_port)

    refusals = "shillings_web_limiter_refusals_total"
    assert m(refusals, limit="signup", cause="limit") == 1
    assert m(refusals, limit="login", cause="limit") == 2
    assert m(refusals, limit="login", cause="unavailable") == 0
    assert m(REQUESTS, route="/v1/signup", method="POST", status="429") == 1
    assert m(REQUESTS, route="/v1/login", method="POST", status="429") == 2
    assert m("shillings_web_cache_lookups_total", outcome="bypass") == 3
    assert m("shillings_web_cache_lookups_total", outcome="hit") == 0


@pytest_twisted.ensureDeferred
async def test_invalidations_redis_refused_are_a_gauge_until_it_takes_them(web_with):
    web = await web_with(metrics_listen=METRICS)
    alice = await user_with_token(web.client, "alice@example.com", topup="10.00")
    await user_with_token(web.client, "bob@example.com")
    failing = refuse(web, "delete")
    body = {"receiver_email": "bob@example.com", "amount": "1.00"}
    assert (await web.client.post("/v1/pay", body, token=alice)).code == 200
    m = await scrape(web.server.metrics_port)
    assert m("shillings_web_cache_invalidations_pending") == 2  # payer's and receiver's
    failing.clear()
    assert await poll_until(reactor, lambda: web.server.api.cache.pending == 0, 5.0)
    m = await scrape(web.server.metrics_port)
    assert m("shillings_web_cache_invalidations_pending") == 0


@pytest_twisted.ensureDeferred
async def test_requests_the_channel_refuses_are_counted(web_with):
    """A request Twisted cannot parse never reaches a route: it counts as route other."""
    web = await web_with(metrics_listen=METRICS)
    response = await treq.request(
        "GET", f"http://127.0.0.1:{web.server.port}/v1/account", headers={"X-Big": "a" * 20_000}
    )
    assert response.code == 431
    await response.content()
    m = await scrape(web.server.metrics_port)
    assert m(REQUESTS, route="other", method="other", status="431") == 1


@pytest_twisted.ensureDeferred
async def test_a_taken_metrics_address_neither_stops_serving_nor_metrics_for_good(web_with):
    """The web process serves while its metrics port is taken; the listener keeps trying
    and serves metrics once the port is free."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        web = await web_with(metrics_listen=f"tcp:{port}:interface=127.0.0.1")
        assert web.server.metrics_port == 0
        assert (await web.client.get("/healthz")).code == 200
        listener = MetricsListener(
            reactor, f"tcp:{port}:interface=127.0.0.1", web.server.metrics.registry, retry=0.05
        )
        await listener.start()
        assert listener.tcp_port == 0
    finally:
        holder.close()
    for _ in range(200):
        if listener.tcp_port:
            break
        await deferLater(reactor, 0.05, lambda: None)
    try:
        m = await scrape(port)
        assert m(REQUESTS, route="/healthz", method="GET", status="200") == 1
    finally:
        await listener.stop()
