"""The app server's metrics, scraped over HTTP from its metrics listener after known traffic."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import clientFromString, connectProtocol
from twisted.internet.task import deferLater

from shillings_proto.framing import ShillingsClientProtocol
from tests import protocol_requests as messages
from tests.app.helpers import new_session, row_locked, sql
from tests.scrape import scrape

METRICS = "tcp:0:interface=127.0.0.1"


async def _connect(server) -> ShillingsClientProtocol:
    endpoint = clientFromString(reactor, server.address)
    return await connectProtocol(endpoint, ShillingsClientProtocol())


async def _close(client: ShillingsClientProtocol) -> None:
    client.transport.loseConnection()
    await client.lost_deferred


@pytest_twisted.ensureDeferred
async def test_requests_payments_and_cents_are_counted(make_server):
    server = await make_server(metrics_listen=METRICS)
    client = await _connect(server)
    try:
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        assert (await payer.topup(10_000)).status.code == 200
        for amount in (100, 250, 1234):
            assert (await payer.pay(payee.email, amount)).status.code == 200
        first = await payer.pay(payee.email, 7, "metrics-key")
        again = await payer.pay(payee.email, 7, "metrics-key")
        assert (first.status.code, first.status.replayed) == (200, False)
        assert (again.status.code, again.status.replayed) == (200, True)
        assert again.pay.transaction_id == first.pay.transaction_id
        refused = await payer.pay(payee.email, 1_000_000)
        assert (refused.status.code, refused.status.reason) == (422, "insufficient_funds")
        assert await payee.balance() == 1591
        m = await scrape(server.metrics_port)
        assert m("shillings_app_connections") == 1
    finally:
        await _close(client)

    requests = "shillings_app_requests_total"
    assert m(requests, command="SGN", status="201") == 2
    assert m(requests, command="LGN", status="200") == 2
    assert m(requests, command="TPU", status="200") == 1
    assert m(requests, command="PAY", status="200") == 5
    assert m(requests, command="PAY", status="422") == 1
    assert m(requests, command="USR", status="200") == 1
    assert m("shillings_app_request_duration_seconds_count", command="PAY") == 6
    assert m("shillings_app_request_duration_seconds_bucket", command="PAY", le="+Inf") == 6
    # The replayed pay moved nothing: 4 payments, not 5.
    assert m("shillings_app_payments_total") == 4
    assert m("shillings_app_payment_cents_total") == 1591
    assert m("shillings_app_topups_total") == 1
    assert m("shillings_app_topup_cents_total") == 10_000
    assert m("shillings_app_in_flight") == 0
    assert m("shillings_app_db_pool_busy") == 0
    assert m("shillings_app_db_pool_size") == server.config.db_pool_max
    for cause in ("reconnect", "lock_conflict", "retry_transaction"):
        assert m("shillings_app_db_retries_total", cause=cause) == 0


@pytest_twisted.ensureDeferred
async def test_in_flight_pool_use_and_retries_are_read_when_scraped(make_server):
    """Four duplicate payments wait on a locked row (four requests in flight, four pool
    threads busy); released, three of them replay the stored answer (their lookup runs
    after the lock, so it finds the first's key: no retry): four PAY answered 200, one
    payment made. Then the pool's connections are killed, so the next top-up retries on a
    new one (a ``reconnect`` retry). The counts outlive a restart."""
    server = await make_server(metrics_listen=METRICS)
    client = await _connect(server)
    try:
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        await payer.topup(10_000)
        with row_locked(server.dsn, payer.user_id):
            requests = [
                client.call(messages.pay(payer.user_id, payer.token_id, payee.email, 300, "k"))
                for _ in range(4)
            ]
            for _ in range(500):
                waiting = sql(
                    server.dsn,
                    "SELECT COUNT(*) FROM information_schema.processlist WHERE"
                    " command = 'Query' AND info LIKE 'SELECT user_id, balance%%FOR UPDATE'",
                )[0][0]
                if waiting == 4:
                    break
                await deferLater(reactor, 0.01, lambda: None)
            held = await scrape(server.metrics_port)
        responses = await defer.gatherResults(requests)
        assert [r.status.code for r in responses] == [200] * 4
        ids = sql(
            server.dsn,
            "SELECT id FROM information_schema.processlist"
            " WHERE db = DATABASE() AND id <> CONNECTION_ID()",
        )
        for (conn_id,) in ids:
            sql(server.dsn, f"KILL {int(conn_id)}")
        assert (await payer.topup(1)).status.code == 200
    finally:
        await _close(client)
    assert held("shillings_app_in_flight") == 4
    assert held("shillings_app_db_pool_busy") == 4
    after = await scrape(server.metrics_port)
    assert after("shillings_app_in_flight") == 0
    assert after("shillings_app_db_retries_total", cause="retry_transaction") == 0
    reconnects = after("shillings_app_db_retries_total", cause="reconnect")
    assert reconnects >= 1
    assert after("shillings_app_payments_total") == 1
    assert after("shillings_app_payment_cents_total") == 300

    await server.stop()
    await server.start()
    restarted = await scrape(server.metrics_port)
    assert restarted("shillings_app_db_retries_total", cause="reconnect") == reconnects
    assert restarted("shillings_app_requests_total", command="PAY", status="200") == 4
    assert restarted("shillings_app_connections") == 0


@pytest_twisted.ensureDeferred
async def test_refunds_and_their_cents_are_counted(make_server):
    """A refund of a given amount and one of the rest (amount 0 in the request) count
    what they moved; a replay and a refusal count nothing."""
    server = await make_server(metrics_listen=METRICS)
    client = await _connect(server)
    try:
        payer = await new_session(client, "payer")
        payee = await new_session(client, "payee")
        await payer.topup(10_000)
        payment = (await payer.pay(payee.email, 1_000)).pay.transaction_id
        assert (await payee.refund(payment, 300, key="r")).status.code == 201
        assert (await payee.refund(payment, 300, key="r")).status.replayed
        assert (await payee.refund(payment)).refund.refund.amount == 700
        assert (await payee.refund(payment)).status.reason == "refund_exceeds_payment"
        m = await scrape(server.metrics_port)
    finally:
        await _close(client)
    assert m("shillings_app_requests_total", command="RFD", status="201") == 3
    assert m("shillings_app_requests_total", command="RFD", status="422") == 1
    assert m("shillings_app_refunds_total") == 2
    assert m("shillings_app_refund_cents_total") == 1_000
