"""The app-server pool against stand-in app servers: spreading, timeouts, reconnection,
handshake, fail-fast when nothing is connected."""

from __future__ import annotations

import itertools

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.logger import globalLogPublisher

from shillings_proto import pb
from shillings_web.pool import AppPool, AppUnavailable, retry_delay
from tests import protocol_requests as messages
from tests.polling import poll_until
from tests.web.fakeapp import FakeApp, ok_health
from tests.web.sends import recording_sends


def watch_errors() -> list[dict]:
    """Every log event from now on (remove ``events.append`` from the publisher after)."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    return events


async def started(*apps: FakeApp) -> None:
    for app in apps:
        await app.start()


def test_retry_delay_backs_off_to_a_cap():
    delays = [retry_delay(n) for n in range(1, 12)]
    assert delays[0] < 0.2
    assert all(b >= a * 0.9 for a, b in itertools.pairwise(delays))
    assert max(delays) <= 2.2


@pytest_twisted.ensureDeferred
async def test_requests_spread_over_all_app_servers():
    a, b = FakeApp(reactor), FakeApp(reactor)
    await started(a, b)
    pool = AppPool([a.address, b.address], reactor=reactor, connections=2, timeout=2.0)
    pool.start()
    try:
        assert await poll_until(reactor, lambda: pool.live_connections == 4, 5.0)
        for _ in range(20):
            response = await pool.call(messages.health())
            assert response.health.database_ok
        assert len(a.factory.received) >= 5 and len(b.factory.received) >= 5
    finally:
        await pool.stop()
        await a.stop()
        await b.stop()


@pytest_twisted.ensureDeferred
async def test_least_in_flight_connection_is_chosen():
    a, b = FakeApp(reactor), FakeApp(reactor)
    await started(a, b)
    a.factory.responder = a.factory.hang
    b.factory.responder = b.factory.hang
    pool = AppPool([a.address, b.address], reactor=reactor, connections=1, timeout=5.0)
    pool.start()
    try:
        assert await poll_until(reactor, lambda: pool.live_connections == 2, 5.0)
        calls = [defer.ensureDeferred(pool.call(messages.health())) for _ in range(6)]
        assert await poll_until(
            reactor, lambda: len(a.factory.hanging) + len(b.factory.hanging) == 6, 5.0
        )
        assert (len(a.factory.hanging), len(b.factory.hanging)) == (3, 3)
        a.factory.release()
        b.factory.release()
        for call in calls:
            assert (await call).status.code == 200
    finally:
        await pool.stop()
        await a.stop()
        await b.stop()


@pytest_twisted.ensureDeferred
async def test_calls_to_one_server_share_its_first_connection_and_a_turn_s_writes():
    app = FakeApp(reactor)
    app.factory.responder = app.factory.hang
    await app.start()
    pool = AppPool([app.address], reactor=reactor, connections=2, timeout=5.0)
    pool.start()
    try:
        assert await poll_until(reactor, lambda: pool.live_connections == 2, 5.0)
        first = pool._slots[0].protocol
        sends = recording_sends(first.transport)
        calls = [defer.ensureDeferred(pool.call(messages.health())) for _ in range(6)]
        # The first went at once (nothing was in flight); the five written while it
        # waited are held until the reactor turn ends, then go in one write.
        assert first.in_flight == 6 and len(sends) == 1
        assert await poll_until(reactor, lambda: len(app.factory.hanging) == 6, 5.0)
        assert len(sends) == 2
        assert sorted(c.handled for c in app.factory.connections) == [0, 6]
        app.factory.release()
        for call in calls:
            assert (await call).status.code == 200
    finally:
        await pool.stop()
        await app.stop()


@pytest_twisted.ensureDeferred
async def test_no_connection_waits_until_the_deadline_then_fails_with_no_effect():
    app = FakeApp(reactor)
    await app.start()
    address = app.address
    await app.stop()
    pool = AppPool([address], reactor=reactor, connections=1, timeout=0.5)
    pool.start()
    try:
        began = reactor.seconds()
        with pytest.raises(AppUnavailable, match="no app server connected") as refused:
            await pool.call(messages.health())
        assert reactor.seconds() - began >= 0.45
        assert refused.value.no_effect
    finally:
        await pool.stop()


@pytest_twisted.ensureDeferred
async def test_unanswered_request_times_out():
    app = FakeApp(reactor)
    await app.start()
    app.factory.responder = app.factory.hang
    pool = AppPool([app.address], reactor=reactor, connections=1, timeout=0.3)
    pool.start()
    try:
        assert await poll_until(reactor, lambda: pool.live_connections == 1, 5.0)
        with pytest.raises(AppUnavailable, match="in time") as timed_out:
            await pool.call(messages.health())
        assert not timed_out.value.no_effect
        assert len(app.factory.hanging) == 1
    finally:
        await pool.stop()
        await app.stop()


@pytest_twisted.ensureDeferred
async def test_reconnects_after_app_server_restart():
    app = FakeApp(reactor)
    await app.start()
    pool = AppPool([app.address], reactor=reactor, connections=2, timeout=2.0)
    pool.start()
    try:
        assert await poll_until(reactor, lambda: pool.live_connections == 2, 5.0)
        await app.stop()
        assert await poll_until(reactor, lambda: pool.live_connections == 0, 5.0)
        with pytest.raises(AppUnavailable):
            await pool.call(messages.health())
        await app.start()  # same port
        assert await poll_until(reactor, lambda: pool.live_connections == 2, 10.0)
        response = await pool.call(messages.health())
        assert response.status.code == 200
    finally:
        await pool.stop()
        await app.stop()


@pytest_twisted.ensureDeferred
async def test_lost_connection_retried_only_when_safe():
    app = FakeApp(reactor)
    await app.start()
    pool = AppPool([app.address], reactor=reactor, connections=2, timeout=2.0)
    pool.start()
    try:
        assert await poll_until(reactor, lambda: pool.live_connections == 2, 5.0)
        app.factory.drop_next = 1
        response = await pool.call(messages.health(), retry_safe=True)
        assert response.health.database_ok
        assert await poll_until(reactor, lambda: pool.live_connections == 2, 5.0)
        app.factory.drop_next = 1
        with pytest.raises(AppUnavailable, match="lost"):
            await pool.call(messages.pay(1, "t", "b@c.de", 100))
    finally:
        await pool.stop()
        await app.stop()


@pytest_twisted.ensureDeferred
async def test_a_resend_after_a_lost_connection_never_claims_no_effect():
    """A keyed pay lost with its connection may have committed on the first server: the
    resend's "no effect" 503 speaks only for itself, so the answer must not claim it."""

    def refuse(request: pb.Request) -> pb.Response:
        if request.command == pb.HEL:
            return ok_health(request)
        return pb.Response(
            status=pb.Status(code=503, reason="unavailable", message="db", no_effect=True)
        )

    app = FakeApp(reactor, refuse)
    await app.start()
    pool = AppPool([app.address], reactor=reactor, connections=2, timeout=2.0)
    pool.start()
    try:
        assert await poll_until(reactor, lambda: pool.live_connections == 2, 5.0)
        first = await pool.call(messages.pay(1, "t", "b@c.de", 100, "k"), retry_safe=True)
        assert first.status.no_effect
        app.factory.drop_next = 1
        resent = await pool.call(messages.pay(1, "t", "b@c.de", 100, "k"), retry_safe=True)
        assert resent.status.code == 503
        assert not resent.status.no_effect
        assert len([r for r in app.factory.received if r.command == pb.PAY]) == 3
    finally:
        await pool.stop()
        await app.stop()


@pytest_twisted.ensureDeferred
async def test_handshake_sends_the_shared_secret():
    app = FakeApp(reactor)
    await app.start()
    app.factory.secret = "sesame"
    good = AppPool([app.address], reactor=reactor, connections=1, timeout=2.0, app_secret="sesame")
    bad = AppPool([app.address], reactor=reactor, connections=1, timeout=0.5, app_secret="nope")
    good.start()
    bad.start()
    try:
        assert await poll_until(reactor, lambda: good.live_connections == 1, 5.0)
        response = await good.call(messages.health())
        assert response.status.code == 200
        assert app.factory.received[0].command == pb.HEL
        assert bad.live_connections == 0
        with pytest.raises(AppUnavailable):
            await bad.call(messages.health())
    finally:
        await good.stop()
        await bad.stop()
        await app.stop()


@pytest_twisted.ensureDeferred
async def test_when_connected_fires_on_the_first_live_connection():
    app = FakeApp(reactor)
    await app.start()
    await app.stop()  # a port nothing listens on until the app starts again below
    pool = AppPool([app.address], reactor=reactor, connections=1, timeout=2.0)
    errors = watch_errors()
    abandoned = pool.when_connected()
    abandoned.cancel()
    ready = pool.when_connected()
    pool.start()
    try:
        await task.deferLater(reactor, 0.3)
        assert not ready.called and pool.live_connections == 0
        await app.start()
        ready.addTimeout(5.0, reactor)
        await ready
        assert pool.live_connections == 1
        assert pool.when_connected().called
    finally:
        await pool.stop()  # at once: the connection was offered inside no transition
        await app.stop()
        await task.deferLater(reactor, 0.1)
        globalLogPublisher.removeObserver(errors.append)
    assert [e for e in errors if e.get("log_failure") or e.get("isError")] == []


@pytest_twisted.ensureDeferred
async def test_refused_handshakes_back_off_without_errors():
    app = FakeApp(reactor)
    await app.start()
    app.factory.secret = "sesame"
    errors: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_failure") is not None or event.get("isError"):
            errors.append(event)

    globalLogPublisher.addObserver(observe)
    pool = AppPool([app.address], reactor=reactor, connections=1, timeout=2.0, app_secret="nope")
    pool.start()
    try:
        await task.deferLater(reactor, 1.2)
        hellos = [r for r in app.factory.received if r.command == pb.HEL]
        # Back-off 0.1, 0.2, 0.4, 0.8 s: about 4 attempts, not one every 0.1 s.
        assert 2 <= len(hellos) <= 6, len(hellos)
        assert pool.live_connections == 0
    finally:
        await pool.stop()
        await app.stop()
        globalLogPublisher.removeObserver(observe)
    assert errors == []
