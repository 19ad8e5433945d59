"""WHC and host name resolution: a replay of an idempotency key answers the first use's
endpoint without vetting the URL again (DNS or allow list may have changed since), and
slow resolutions hold only the resolver's own threads, never logins."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor

from shillings_app.webhooks.allow import parse_allow
from shillings_app.webhooks.resolver import Resolver
from tests import protocol_requests as messages
from tests.app.helpers import PASSWORD, new_session
from tests.app.test_webhooks import create, listed, refused
from tests.polling import poll_until
from tests.webhooks.blocking import BlockingLookup

NAMED = "http://hook.test/hook"


def answering(lookup: BlockingLookup) -> BlockingLookup:
    lookup.release()
    return lookup


@pytest_twisted.ensureDeferred
async def test_replay_is_not_vetted_again_when_dns_changed(app_server, client):
    ctx = app_server.factory.ctx
    ctx.resolver = Resolver(reactor, lookup=answering(BlockingLookup()))
    alice = await new_session(client, "alice")
    first = await create(alice, url=NAMED, key="wh-dns")
    assert first.status.code == 201, first.status

    ctx.resolver = Resolver(reactor, lookup=answering(BlockingLookup(fail=True)))
    again = await create(alice, url=NAMED, key="wh-dns")
    assert (again.status.code, again.status.replayed) == (201, True), again.status
    assert again.webhook_create.webhook == first.webhook_create.webhook
    fresh = await create(alice, url=NAMED, key="wh-dns-2")
    assert refused(fresh) == (400, "invalid_url") and "does not resolve" in fresh.status.message
    other = await create(alice, url=NAMED + "x", key="wh-dns")
    assert refused(other) == (422, "idempotency_key_reused")
    assert len(await listed(alice)) == 1


@pytest_twisted.ensureDeferred
async def test_replay_is_not_vetted_again_when_the_allow_list_changed(
    app_server, make_server, connect
):
    alice = await new_session(await connect(), "alice")
    first = await create(alice, key="wh-allow")  # 127.0.0.1: allowed by app_server
    assert first.status.code == 201, first.status
    public_only = await make_server(webhook_allow=parse_allow("public"))
    alice.client = await connect(public_only.address)
    again = await create(alice, key="wh-allow")
    assert (again.status.code, again.status.replayed) == (201, True), again.status
    assert again.webhook_create.webhook == first.webhook_create.webhook
    assert refused(await create(alice, key="wh-allow-2")) == (400, "invalid_url")


@pytest_twisted.ensureDeferred
async def test_blocked_resolutions_do_not_delay_a_login(app_server, connect):
    """More registrations waiting for a stuck DNS server than the reactor's pool has
    threads: a login (a bcrypt check in that pool) is answered meanwhile; one past the
    resolver's queue gets 503 at once; released, the registrations complete."""
    lookup = BlockingLookup()
    resolver = Resolver(reactor, threads=2, queue=12, lookup=lookup)
    app_server.factory.ctx.resolver = resolver
    alice = await new_session(await connect(), "alice")
    many = reactor.getThreadPool().max + 4  # type: ignore[attr-defined]
    assert many == 14
    pending = [
        defer.ensureDeferred(create(alice, url=f"http://slow{n}.test/hook")) for n in range(many)
    ]
    try:
        await lookup.started(2)
        await _all_waiting(resolver, many)
        busy = await create(alice, url="http://one-more.test/hook")
        assert refused(busy) == (503, "unavailable")
        assert busy.status.retry_after == 1
        logging_in = defer.ensureDeferred(
            (await connect()).call(messages.login(alice.email, PASSWORD))
        )
        logging_in.addTimeout(10, reactor)
        answer = await logging_in
        assert answer.status.code == 200, answer.status
        assert resolver.pending == many
    finally:
        lookup.release()
    codes = sorted(a.status.code for a in await defer.gatherResults(pending))
    assert codes == [201] * 5 + [422] * (many - 5)


async def _all_waiting(resolver: Resolver, count: int) -> None:
    """Until ``count`` resolutions are pending (the requests reach the app server one
    reactor turn after another)."""
    assert await poll_until(reactor, lambda: resolver.pending == count, within=10, step=0.01)


@pytest_twisted.ensureDeferred
async def test_the_app_servers_resolver_has_the_configured_size(make_server):
    server = await make_server(webhook_resolver_threads=1, webhook_resolver_queue=3)
    resolver = server.factory.ctx.resolver
    assert (resolver.threads, resolver.queue) == (1, 3)
