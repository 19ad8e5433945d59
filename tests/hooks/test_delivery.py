"""Delivery workers against real processes: events made by an app server, delivered by
``shillings-app hooks`` workers to the Klein receiver, which verifies each one with
``standardwebhooks``. Retries, timeouts, redirects, the allow list, a worker killed mid-send."""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
from twisted.internet import defer

from tests import protocol_requests as messages
from tests.app.helpers import Session, new_session, sql
from tests.app.test_webhooks import create, deliveries
from tests.hooks.conftest import add_webhook, attempts_of, deliveries_of
from tests.hooks.receiver import FAIL, HANG, HOLD, OK, REDIRECT, Endpoint, Receiver
from tests.polling import poll_until


def event_ids(dsn: str, user_id: int, event_type: str | None = None) -> set[str]:
    query = "SELECT event_id FROM events WHERE user_id = %s"
    args: tuple[Any, ...] = (user_id,)
    if event_type:
        query += " AND type = %s"
        args += (event_type,)
    return {row[0] for row in sql(dsn, query, args)}


async def settled(dsn: str, webhook_id: str, state: str, count: int) -> None:
    """Until ``count`` deliveries to the endpoint are in ``state`` (the worker records an
    attempt just after the receiver answered it)."""
    from twisted.internet import reactor

    def done() -> bool:
        return sum(1 for row in deliveries_of(dsn, webhook_id) if row[1] == state) >= count

    assert await poll_until(reactor, done, within=30, step=0.05), deliveries_of(dsn, webhook_id)


async def register(
    session: Session, receiver: Receiver, name: str, types: tuple[str, ...] = (), **how: Any
) -> tuple[str, Endpoint]:
    """An endpoint of ``session``'s user registered through the API (WHC) at the receiver's
    ``/hook/<name>``, which verifies with the secret the API answered; its webhook_id."""
    response = await create(session, receiver.url(name), types)
    assert response.status.code == 201, response.status
    webhook = response.webhook_create.webhook
    return webhook.webhook_id, receiver.add(name, webhook.secret, **how)


async def topup(session: Session, amount: int = 100) -> None:
    response = await session.topup(amount)
    assert response.status.code == 200, response.status


@pytest_twisted.ensureDeferred
async def test_burst_every_event_arrives_verified(app_server, connect, workers, receiver):
    dsn = app_server.dsn
    first = await connect()
    alice = await new_session(first, "alice")
    bob = await new_session(first, "bob")
    alice_hook, _ = await register(alice, receiver, "alice")
    bob_hook, _ = await register(bob, receiver, "bob", ("payment.received",))
    workers()
    workers()

    async def operations(n: int) -> None:
        session = Session(await connect(), alice.user, alice.login)
        for _ in range(25):
            await topup(session, 100)
        for _ in range(50):
            response = await session.pay(bob.email, 1)
            assert response.status.code == 200, response.status

    await defer.gatherResults([defer.ensureDeferred(operations(n)) for n in range(4)])
    alice_events = event_ids(dsn, alice.user_id)
    bob_events = event_ids(dsn, bob.user_id)
    assert len(alice_events) == 300 and len(bob_events) == 200

    await receiver.until(
        lambda: (
            set(receiver.ids("alice")) >= alice_events and set(receiver.ids("bob")) >= bob_events
        ),
        within=120,
    )
    assert receiver.bad == []
    for name in ("alice", "bob"):
        for got in receiver.endpoints[name].got:
            assert got.webhook_id == got.event["event_id"]  # the same on every retry
    assert set(receiver.ids("alice")) == alice_events
    assert set(receiver.ids("bob")) == bob_events  # payment.received only
    assert {got.event["type"] for got in receiver.endpoints["bob"].got} == {"payment.received"}
    sample = receiver.endpoints["bob"].got[0].event
    (row,) = sql(dsn, "SELECT data FROM events WHERE event_id = %s", (sample["event_id"],))
    assert sample["data"] == json.loads(row[0])
    assert sample["data"]["amount"] == "0.01"
    await settled(dsn, alice_hook, "succeeded", 300)
    await settled(dsn, bob_hook, "succeeded", 200)
    assert sql(dsn, "SELECT COUNT(*) FROM events WHERE dispatched = 0") == [(0,)]


@pytest_twisted.ensureDeferred
async def test_failing_endpoint_delivered_after_it_recovers(app_server, client, workers, receiver):
    dsn = app_server.dsn
    user = await new_session(client, "flaky")
    hook, _ = await register(user, receiver, "flaky", fail_first=3)
    worker = workers()
    await topup(user)
    (event_id,) = event_ids(dsn, user.user_id)
    await receiver.until(lambda: receiver.ids("flaky")[event_id] == 1)
    await settled(dsn, hook, "succeeded", 1)
    attempts = attempts_of(dsn, hook)
    assert [(a[1], a[2], a[3]) for a in attempts] == [
        (1, 500, "HTTP 500"),
        (2, 500, "HTTP 500"),
        (3, 500, "HTTP 500"),
        (4, 200, ""),
    ]
    assert {a[0] for a in attempts} == {event_id}
    log = await deliveries(user, hook)
    assert log.status.code == 200, log.status
    shown = [(d.event_id, d.attempt, d.status_code, d.error) for d in log.deliveries.deliveries]
    assert shown == [(event_id, *a[1:]) for a in reversed(attempts)]  # newest first
    assert sql(dsn, "SELECT failing_since FROM webhooks WHERE webhook_id = %s", (hook,)) == [
        (None,)
    ]
    assert "attempt 3 http_error: HTTP 500; retry at" in worker.log_text()
    assert 'shillings_hooks_attempts_total{result="http_error"} 3.0' in worker.metrics()


@pytest_twisted.ensureDeferred
async def test_endpoint_that_times_out(app_server, client, workers, receiver):
    dsn = app_server.dsn
    user = await new_session(client, "slow")
    hook, _ = await register(user, receiver, "slow", mode=HANG)
    workers(SHILLINGS_HOOKS_TIMEOUT="0.5", SHILLINGS_HOOKS_SCHEDULE="100ms")
    await topup(user)
    await settled(dsn, hook, "failed", 1)
    attempts = attempts_of(dsn, hook)
    assert [(a[1], a[2], a[3]) for a in attempts] == [
        (1, 0, "timed out after 0.5 s"),
        (2, 0, "timed out after 0.5 s"),
    ]
    assert receiver.endpoints["slow"].requests == 2


@pytest_twisted.ensureDeferred
async def test_redirect_is_not_followed(app_server, client, workers, receiver):
    dsn = app_server.dsn
    user = await new_session(client, "moved")
    hook, moved = await register(user, receiver, "moved", mode=REDIRECT)
    receiver.add("target", moved.secret)
    workers(SHILLINGS_HOOKS_SCHEDULE="100ms")
    await topup(user)
    await settled(dsn, hook, "failed", 1)
    attempts = attempts_of(dsn, hook)
    assert [(a[1], a[2], a[3]) for a in attempts] == [
        (1, 302, "HTTP 302: redirect not followed"),
        (2, 302, "HTTP 302: redirect not followed"),
    ]
    assert receiver.endpoints["target"].requests == 0


@pytest_twisted.ensureDeferred
async def test_host_resolving_outside_allow_list_is_refused(app_server, client, workers, receiver):
    dsn = app_server.dsn
    user = await new_session(client, "inside")
    # Registered while its host resolved inside the allow list (written as the API would);
    # now localhost resolves to loopback, which this worker's allow list leaves out.
    hook, secret = add_webhook(dsn, user.user_id, receiver.url("inside", host="localhost"))
    receiver.add("inside", secret)
    worker = workers(SHILLINGS_WEBHOOK_ALLOW="10.0.0.0/8", SHILLINGS_HOOKS_SCHEDULE="100ms")
    await topup(user)
    await settled(dsn, hook, "failed", 1)
    attempts = attempts_of(dsn, hook)
    assert len(attempts) == 2
    for _event, _n, status, error in attempts:
        assert status == 0
        # Said without the address (the deliveries log is the user's: no DNS oracle).
        assert error == (
            "refused: host 'localhost' resolves to an address outside the networks webhooks"
            " may target (10.0.0.0/8)"
        ), error
    assert receiver.endpoints["inside"].requests == 0
    log = worker.log_text()
    assert "attempt 2 refused: refused: host 'localhost' resolves to an address outside" in log
    assert "failed for good" in log
    metrics = worker.metrics()
    assert 'shillings_hooks_attempts_total{result="refused"} 2.0' in metrics
    assert 'shillings_hooks_deliveries_total{outcome="failed"} 1.0' in metrics


@pytest_twisted.ensureDeferred
async def test_endpoint_failing_for_the_whole_schedule_is_disabled(
    app_server, client, workers, receiver
):
    dsn = app_server.dsn
    user = await new_session(client, "dead")
    hook, _ = await register(user, receiver, "dead", mode=FAIL)
    worker = workers(SHILLINGS_HOOKS_SCHEDULE="100ms,100ms", SHILLINGS_HOOKS_JITTER="0")
    await topup(user)
    await settled(dsn, hook, "failed", 1)
    assert len(attempts_of(dsn, hook)) == 3
    assert sql(dsn, "SELECT state FROM webhooks WHERE webhook_id = %s", (hook,)) == [("disabled",)]
    assert f"webhook {hook} disabled" in worker.log_text()
    await topup(user)  # a disabled endpoint gets nothing more
    from twisted.internet import reactor

    assert await poll_until(
        reactor,
        lambda: sql(dsn, "SELECT COUNT(*) FROM events WHERE dispatched = 0") == [(0,)],
        within=30,
    )
    assert len(deliveries_of(dsn, hook)) == 1
    assert receiver.endpoints["dead"].requests == 3


@pytest_twisted.ensureDeferred
async def test_worker_killed_mid_delivery_is_redelivered_same_id(
    app_server, client, workers, receiver
):
    dsn = app_server.dsn
    user = await new_session(client, "held")
    hook, endpoint = await register(user, receiver, "held", mode=HOLD)
    first = workers(SHILLINGS_HOOKS_TIMEOUT="5", SHILLINGS_HOOKS_LEASE="6")
    await topup(user)
    (event_id,) = event_ids(dsn, user.user_id)
    await receiver.until(lambda: len(endpoint.got) == 1)  # the worker waits for the answer
    first.kill9()
    endpoint.mode = OK
    receiver.release()
    workers(SHILLINGS_HOOKS_TIMEOUT="5", SHILLINGS_HOOKS_LEASE="6")
    # The lease of the killed worker passes, then the delivery is claimed again.
    await receiver.until(lambda: receiver.ids("held")[event_id] == 2)
    await settled(dsn, hook, "succeeded", 1)
    assert receiver.bad == []
    assert [got.webhook_id for got in endpoint.got] == [event_id, event_id]
    assert [(a[1], a[2]) for a in attempts_of(dsn, hook)] == [(1, 200)]


@pytest_twisted.ensureDeferred
async def test_hold_captured_delivery_names_the_capture(app_server, client, workers, receiver):
    """The ``hold.captured`` body is the event as GET /v1/events lists it: the hold, with
    ``capture_transaction_id``, the capture's ledger row (the one to refund)."""
    payer = await new_session(client, "payer")
    shop = await new_session(client, "shop")
    await topup(payer, 1000)
    await register(shop, receiver, "shop", ("hold.captured",))
    workers()
    made = await client.call(messages.hold(payer.user_id, payer.token_id, shop.email, 600))
    hold_id = made.hold.hold.hold_id
    captured = await client.call(messages.capture(shop.user_id, shop.token_id, hold_id, 250, ""))
    assert captured.status.code == 200, captured.status
    await receiver.until(lambda: len(receiver.endpoints["shop"].got) == 1)
    [got] = receiver.endpoints["shop"].got
    assert receiver.bad == []
    assert got.event["type"] == "hold.captured"
    data = got.event["data"]
    assert (data["hold_id"], data["state"], data["captured_amount"]) == (
        hold_id,
        "captured",
        "2.50",
    )
    assert data["capture_transaction_id"] == captured.capture.transaction_id
