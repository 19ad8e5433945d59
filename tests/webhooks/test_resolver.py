"""The webhook resolver: names resolved in threads of its own, a bounded number at once,
refused past its queue, never holding the reactor's thread pool (where bcrypt runs)."""

from __future__ import annotations

import ipaddress
import threading

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThread

from shillings_app.webhooks.allow import NotPermitted, resolve
from shillings_app.webhooks.resolver import Resolver, ResolverBusy
from tests.webhooks.blocking import ADDRESS, BlockingLookup


@pytest_twisted.ensureDeferred
async def test_blocked_lookups_leave_the_reactor_pool_free() -> None:
    """More blocked resolutions than the reactor's pool has threads: work in that pool
    (bcrypt's) still runs at once, and at most ``threads`` lookups run."""
    lookup = BlockingLookup()
    resolver = Resolver(reactor, threads=2, queue=20, lookup=lookup)
    reactor_threads = reactor.getThreadPool().max  # type: ignore[attr-defined]
    pending = [
        defer.ensureDeferred(resolve(f"slow{n}.test", resolver)) for n in range(reactor_threads + 2)
    ]
    try:
        await lookup.started(2)
        assert resolver.pending == reactor_threads + 2
        in_reactor_pool = deferToThread(lambda: threading.current_thread().name)
        in_reactor_pool.addTimeout(5, reactor)  # it would wait forever if lookups held it
        assert not (await in_reactor_pool).startswith("PoolThread-shillings-resolver-")
        assert len(lookup.threads) == 2
        assert all(name.startswith("PoolThread-shillings-resolver-") for name in lookup.threads)
    finally:
        lookup.release()
    answers = await defer.gatherResults(pending)
    assert answers == [[ipaddress.ip_address(ADDRESS)]] * (reactor_threads + 2)
    assert resolver.pending == 0


@pytest_twisted.ensureDeferred
async def test_refused_past_its_queue_and_failures_pass_through() -> None:
    lookup = BlockingLookup(fail=True)
    resolver = Resolver(reactor, threads=1, queue=1, lookup=lookup)
    first = defer.ensureDeferred(resolve("a.test", resolver))
    second = defer.ensureDeferred(resolve("b.test", resolver))
    try:
        await lookup.started(1)
        with pytest.raises(ResolverBusy):
            await resolve("c.test", resolver)
        assert await resolve("127.0.0.1", resolver) == [ipaddress.ip_address("127.0.0.1")]
    finally:
        lookup.release()
    for pending in (first, second):
        with pytest.raises(NotPermitted, match="does not resolve"):
            await pending
    assert resolver.pending == 0
