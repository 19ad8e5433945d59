"""Cursors are opaque and typed: sealed, bound to their list and their user (and a delivery
log's endpoint), so they reveal no global row id and page nothing else; valid on every app
server of a deployment."""

from __future__ import annotations

import base64

import pytest
import pytest_twisted

from shillings_app.errors import InvalidRequest
from shillings_app.handlers.pages import cursor_key, decode_cursor, encode_cursor
from tests import protocol_requests as messages
from tests.app.helpers import Session, new_session, sql
from tests.app.test_events import events
from tests.app.test_webhooks import create, deliveries, record_attempts


def status(response) -> tuple[int, str, str]:
    return response.status.code, response.status.reason, response.status.message


async def busy_pair(client) -> tuple[Session, Session]:
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    for _ in range(3):
        assert (await alice.topup(100)).status.code == 200
        assert (await bob.topup(100)).status.code == 200
    return alice, bob


@pytest_twisted.ensureDeferred
async def test_a_cursor_pages_only_its_own_list_and_user(app_server, client):
    alice, bob = await busy_pair(client)
    first = await alice.transactions(limit=1)
    cursor = first.transactions.next_cursor
    assert cursor.startswith("transactions.")
    [(internal,)] = sql(
        app_server.dsn,
        "SELECT id FROM transactions WHERE transaction_id = %s",
        (first.transactions.transactions[0].transaction_id,),
    )
    body = base64.urlsafe_b64decode(cursor.split(".", 1)[1] + "==")
    # nonce (12) + the id sealed (8) + tag (16); the id's 8 bytes are not in it in clear (a
    # check for its decimal digits would fail by chance: "5" is in 13 % of 36 random bytes)
    assert len(body) == 36 and internal.to_bytes(8, "big") not in body
    again = await alice.transactions(limit=1)
    assert again.transactions.next_cursor != cursor  # sealed with a fresh nonce each time
    assert (await alice.transactions(limit=1, cursor=cursor)).status.code == 200

    on_events = await events(alice, limit=1, cursor=cursor)
    assert status(on_events) == (
        400,
        "invalid_request",
        "cursor belongs to the transactions list, not to events",
    )
    as_bob = await bob.transactions(limit=1, cursor=cursor)
    assert status(as_bob) == (
        400,
        "invalid_request",
        "cursor was not issued to you for this transactions list (or was altered)",
    )
    events_cursor = (await events(alice, limit=1)).events.next_cursor
    assert events_cursor.startswith("events.")
    assert status(await alice.transactions(limit=1, cursor=events_cursor))[:2] == (
        400,
        "invalid_request",
    )
    holds = await client.call(messages.holds(alice.user_id, alice.token_id, cursor=events_cursor))
    assert "cursor belongs to the events list, not to holds" in holds.status.message

    prefix, body_text = cursor.split(".", 1)
    flipped = body_text[:-2] + ("A" if body_text[-2] != "A" else "B") + body_text[-1]
    altered = await alice.transactions(limit=1, cursor=f"{prefix}.{flipped}")
    assert status(altered)[:2] == (400, "invalid_request")
    assert "or was altered" in altered.status.message


@pytest_twisted.ensureDeferred
async def test_a_delivery_log_cursor_is_bound_to_its_endpoint(app_server, client):
    alice = await new_session(client, "alice")
    one = (await create(alice)).webhook_create.webhook.webhook_id
    two = (await create(alice, url="http://127.0.0.1:9/two")).webhook_create.webhook.webhook_id
    record_attempts(app_server.dsn, one, alice.user_id, 2)
    cursor = (await deliveries(alice, one, limit=1)).deliveries.next_cursor
    assert cursor.startswith("deliveries.")
    assert (await deliveries(alice, one, limit=1, cursor=cursor)).status.code == 200
    other = await deliveries(alice, two, limit=1, cursor=cursor)
    assert status(other)[:2] == (400, "invalid_request")


@pytest_twisted.ensureDeferred
async def test_pages_continue_on_another_app_server(app_server, make_server, connect):
    alice, _bob = await busy_pair(await connect())
    first = await alice.transactions(limit=2)
    other = await make_server()
    alice.client = await connect(other.address)
    rest = await alice.transactions(limit=5, cursor=first.transactions.next_cursor)
    assert rest.status.code == 200
    seen = [
        t.transaction_id
        for t in (*first.transactions.transactions, *rest.transactions.transactions)
    ]
    assert len(seen) == len(set(seen)) == 3


def test_a_cursor_opens_only_under_its_deployments_key() -> None:
    key, other = cursor_key("a" * 32), cursor_key("b" * 32)
    cursor = encode_cursor(key, "holds", "7/", 12345)
    assert decode_cursor(key, "holds", "7/", cursor) == 12345
    for wrong in ((other, "holds", "7/"), (key, "holds", "8/")):
        with pytest.raises(InvalidRequest, match="not issued to you"):
            decode_cursor(*wrong, cursor)
