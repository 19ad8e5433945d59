"""POST /v1/webhooks over HTTP and host name resolution: an Idempotency-Key replay answers
the first 201 even when the URL's host no longer resolves, and registrations stuck on DNS
neither delay a login nor pile up without bound."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor

from shillings_app.webhooks.resolver import Resolver
from tests.polling import poll_until
from tests.web.conftest import PASSWORD, user_with_token
from tests.webhooks.blocking import BlockingLookup

NAMED = "http://hook.test/hook"


@pytest_twisted.ensureDeferred
async def test_replay_answers_the_first_201_when_dns_changed(web, app_server):
    ctx = app_server.factory.ctx
    answering = BlockingLookup()
    answering.release()
    ctx.resolver = Resolver(reactor, lookup=answering)
    token = await user_with_token(web.client, "alice@example.com")
    key = {"Idempotency-Key": "wh-dns"}
    first = await web.client.post("/v1/webhooks", {"url": NAMED}, token=token, headers=key)
    assert first.code == 201, first.raw

    failing = BlockingLookup(fail=True)
    failing.release()
    ctx.resolver = Resolver(reactor, lookup=failing)
    again = await web.client.post("/v1/webhooks", {"url": NAMED}, token=token, headers=key)
    assert (again.code, again.body) == (201, first.body)
    fresh = await web.client.post(
        "/v1/webhooks", {"url": NAMED}, token=token, headers={"Idempotency-Key": "wh-2"}
    )
    assert (fresh.code, fresh.reason) == (400, "invalid_url")
    assert "does not resolve" in fresh.body["status"]["message"]


@pytest_twisted.ensureDeferred
async def test_login_is_answered_while_registrations_wait_for_dns(web_with, app_server):
    web = await web_with(request_timeout=60.0)  # the blocked ones wait through the test
    lookup = BlockingLookup()
    resolver = Resolver(reactor, threads=2, queue=12, lookup=lookup)
    app_server.factory.ctx.resolver = resolver
    token = await user_with_token(web.client, "alice@example.com")
    many = 14  # more than the reactor pool's 10 threads
    pending = [
        defer.ensureDeferred(
            web.client.post("/v1/webhooks", {"url": f"http://slow{n}.test/"}, token=token)
        )
        for n in range(many)
    ]
    try:
        await lookup.started(2)
        assert await poll_until(reactor, lambda: resolver.pending == many, within=10)
        busy = await web.client.post("/v1/webhooks", {"url": "http://more.test/"}, token=token)
        assert (busy.code, busy.reason, busy.header("Retry-After")) == (503, "unavailable", "1")
        logging_in = defer.ensureDeferred(
            web.client.post("/v1/login", {"email": "alice@example.com", "password": PASSWORD})
        )
        logging_in.addTimeout(10, reactor)
        assert (await logging_in).code == 200
    finally:
        lookup.release()
    codes = sorted(a.code for a in await defer.gatherResults(pending))
    assert codes == [201] * 5 + [422] * (many - 5)
