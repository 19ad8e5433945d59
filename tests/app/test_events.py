"""EVQ: each party's events after a top-up and a payment, newest first, filtered by type,
paginated with the opaque cursor; refusals."""

from __future__ import annotations

import json
import re

import pymysql
import pytest_twisted
from twisted.internet import defer

from shillings_app.config import parse_dsn
from shillings_proto import pb
from tests import protocol_requests as messages
from tests.app.group_commit import _until, _waiting_for_lock
from tests.app.helpers import Session, new_session, sql


async def events(session: Session, type_: str = "", limit: int = 0, cursor: str = ""):
    return await session.client.call(
        pb.Request(
            command=pb.EVQ,
            events=pb.EventsRequest(
                auth=pb.Auth(user_id=session.user_id, token_id=session.token_id),
                type=type_,
                limit=limit,
                cursor=cursor,
            ),
        )
    )


async def all_events(session: Session, type_: str = "", limit: int = 1) -> list[pb.Event]:
    """Every event of ``session`` by pages of ``limit``."""
    found: list[pb.Event] = []
    cursor = ""
    while True:
        response = await events(session, type_, limit, cursor)
        assert response.status.code == 200, response.status
        page = list(response.events.events)
        assert len(page) <= limit
        found += page
        cursor = response.events.next_cursor
        if not cursor:
            return found


@pytest_twisted.ensureDeferred
async def test_events_of_each_party_after_topup_and_pay(app_server, client):
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    topup = await alice.topup(10_000)
    paid = await alice.pay(bob.email, 1_234)
    assert (topup.status.code, paid.status.code) == (200, 200)

    listed = await all_events(alice)
    assert [e.type for e in listed] == ["payment.sent", "topup.succeeded"]
    sent, topped = (json.loads(e.data_json) for e in listed)
    assert sent["transaction_id"] == paid.pay.transaction_id
    assert (sent["sender_email"], sent["receiver_email"]) == (alice.email, bob.email)
    assert (sent["amount"], sent["kind"], sent["refunded_amount"]) == ("12.34", "payment", "0.00")
    assert topped["transaction_id"] == topup.topup.transaction_id
    assert (topped["sender_email"], topped["amount"], topped["kind"]) == (None, "100.00", "topup")
    assert all(e.event_id.startswith("evt_") and e.created_at.endswith("Z") for e in listed)
    assert listed[0].created_at >= listed[1].created_at

    received = await all_events(bob)
    assert [e.type for e in received] == ["payment.received"]
    assert json.loads(received[0].data_json) == sent

    whole = await events(alice, limit=100)
    assert [e.event_id for e in whole.events.events] == [e.event_id for e in listed]
    assert whole.events.next_cursor == ""

    # ids: `evt_` + 32 hex digits, the first 12 the time in ms, so later events sort after
    ids = [e.event_id for e in reversed(listed)] + [received[0].event_id]
    assert all(re.fullmatch(r"evt_[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == 3 and ids[0][:16] <= ids[1][:16] <= ids[2][:16]


@pytest_twisted.ensureDeferred
async def test_events_filtered_by_type_and_paginated(app_server, client):
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    for cents in (100, 200, 300):
        assert (await alice.topup(cents)).status.code == 200
    for cents in (1, 2):
        assert (await alice.pay(bob.email, cents)).status.code == 200

    topups = await all_events(alice, "topup.succeeded", limit=2)
    assert [json.loads(e.data_json)["amount"] for e in topups] == ["3.00", "2.00", "1.00"]
    payments = await all_events(alice, "payment.sent", limit=1)
    assert [json.loads(e.data_json)["amount"] for e in payments] == ["0.02", "0.01"]
    assert await all_events(alice, "payment.received") == []
    default = await events(alice)
    assert len(default.events.events) == 5 and default.events.next_cursor == ""
    everything = await all_events(alice, limit=2)
    assert [e.type for e in everything] == ["payment.sent"] * 2 + ["topup.succeeded"] * 3
    assert len({e.event_id for e in everything}) == 5


@pytest_twisted.ensureDeferred
async def test_events_refusals(app_server, client):
    alice = await new_session(client, "alice")
    for type_, limit, cursor in (
        ("payment", 0, ""),
        ("PAYMENT.SENT", 0, ""),
        ("", 101, ""),
        ("", 0, "not-a-cursor"),
    ):
        response = await events(alice, type_, limit, cursor)
        assert (response.status.code, response.status.reason) == (400, "invalid_request")
    revoked = await client.call(
        messages.revoke(alice.user_id, alice.token_id, alice.login.expires_at)
    )
    assert revoked.status.code == 200
    response = await events(alice)
    assert (response.status.code, response.status.reason) == (401, "unauthenticated")


def _dispatched(dsn: str, user_id: int) -> list[tuple[str, int]]:
    """(type, dispatched) of the user's events, oldest first."""
    rows = sql(
        dsn, "SELECT type, dispatched FROM events WHERE user_id = %s ORDER BY id", (user_id,)
    )
    return [(str(t), int(d)) for t, d in rows]


@pytest_twisted.ensureDeferred
async def test_events_of_users_without_an_enabled_endpoint_are_born_dispatched(app_server, client):
    """Only users with an enabled webhook endpoint leave events for the delivery workers
    to fan out. An endpoint committed while a change waited for its user's row counts,
    even for a refund, whose snapshot was taken before that wait."""
    alice, bob = await new_session(client, "alice"), await new_session(client, "bob")
    body = pb.WebhookCreateRequest(
        auth=pb.Auth(user_id=alice.user_id, token_id=alice.token_id), url="http://127.0.0.1:9/a"
    )
    hooked = await client.call(pb.Request(command=pb.WHC, webhook_create=body))
    assert hooked.status.code == 201, hooked.status
    assert (await alice.topup(1_000)).status.code == 200
    paid = await alice.pay(bob.email, 300)
    assert paid.status.code == 200
    assert _dispatched(app_server.dsn, alice.user_id) == [
        ("topup.succeeded", 0),
        ("payment.sent", 0),
    ]
    assert _dispatched(app_server.dsn, bob.user_id) == [("payment.received", 1)]

    # A registration's transaction, by hand: bob's row locked, the endpoint inserted, and
    # committed only once the refund waits for that row.
    registering = pymysql.connect(**parse_dsn(app_server.dsn))
    try:
        with registering.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1 FROM users WHERE user_id = %s FOR UPDATE", (bob.user_id,))
            refunding = defer.ensureDeferred(bob.refund(paid.pay.transaction_id, 100))
            await _until(lambda: _waiting_for_lock(app_server.dsn) == 1)
            cur.execute(
                "INSERT INTO webhooks (webhook_id, user_id, url, secret_sealed, created_at,"
                " updated_at) VALUES (UUID(), %s, 'http://127.0.0.1:9/b', 'x',"
                " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                (bob.user_id,),
            )
        registering.commit()
    finally:
        registering.close()
    assert (await refunding).status.code == 201
    assert _dispatched(app_server.dsn, bob.user_id) == [
        ("payment.received", 1),
        ("refund.sent", 0),
    ]

    # The same for a payment batch, which reads its users' endpoints once, after its locks.
    carol = await new_session(client, "carol")
    registering = pymysql.connect(**parse_dsn(app_server.dsn))
    try:
        with registering.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT 1 FROM users WHERE user_id = %s FOR UPDATE", (carol.user_id,))
            paying = defer.ensureDeferred(alice.pay(carol.email, 50))
            await _until(lambda: _waiting_for_lock(app_server.dsn) == 1)
            cur.execute(
                "INSERT INTO webhooks (webhook_id, user_id, url, secret_sealed, created_at,"
                " updated_at) VALUES (UUID(), %s, 'http://127.0.0.1:9/c', 'x',"
                " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                (carol.user_id,),
            )
        registering.commit()
    finally:
        registering.close()
    assert (await paying).status.code == 200
    assert _dispatched(app_server.dsn, carol.user_id) == [("payment.received", 0)]
