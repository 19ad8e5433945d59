"""WHC, WHQ, WHD, WHL through the protocol against the real app server and MariaDB: the
allow list, the limit of 5 under concurrency, the sealed secret, idempotency, deletion and
the delivery log."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import pytest_twisted
from twisted.internet import defer

from shillings_app.reconcile import reconcile
from shillings_app.webhooks.allow import parse_allow
from shillings_app.webhooks.secrets import unseal
from shillings_proto import pb
from tests.app.helpers import Session, new_session, sql
from tests.conftest import TEST_WEBHOOK_KEY

URL = "http://127.0.0.1:9/hook"


def _auth(session: Session) -> pb.Auth:
    return pb.Auth(user_id=session.user_id, token_id=session.token_id)


async def create(session: Session, url: str = URL, types: tuple[str, ...] = (), key: str = ""):
    body = pb.WebhookCreateRequest(
        auth=_auth(session), url=url, event_types=types, idempotency_key=key
    )
    return await session.client.call(pb.Request(command=pb.WHC, webhook_create=body))


async def listed(session: Session) -> list[pb.Webhook]:
    body = pb.WebhooksRequest(auth=_auth(session))
    response = await session.client.call(pb.Request(command=pb.WHQ, webhooks=body))
    assert response.status.code == 200, response.status
    return list(response.webhooks.webhooks)


async def delete(session: Session, webhook_id: str):
    body = pb.WebhookDeleteRequest(auth=_auth(session), webhook_id=webhook_id)
    return await session.client.call(pb.Request(command=pb.WHD, webhook_delete=body))


async def deliveries(session: Session, webhook_id: str, limit: int = 0, cursor: str = ""):
    body = pb.DeliveriesRequest(
        auth=_auth(session), webhook_id=webhook_id, limit=limit, cursor=cursor
    )
    return await session.client.call(pb.Request(command=pb.WHL, deliveries=body))


def refused(response: pb.Response) -> tuple[int, str]:
    return response.status.code, response.status.reason


@pytest_twisted.ensureDeferred
async def test_create_shows_the_secret_once_and_stores_it_sealed(app_server, client):
    alice = await new_session(client, "alice")
    response = await create(alice, types=("payment.received", "topup.succeeded"))
    assert response.status.code == 201, response.status
    webhook = response.webhook_create.webhook
    assert (webhook.url, webhook.state) == (URL, "enabled")
    assert list(webhook.event_types) == ["payment.received", "topup.succeeded"]
    assert webhook.secret.startswith("whsec_") and webhook.created_at.endswith("Z")

    [(sealed, types, user_id)] = sql(
        app_server.config.mysql_dsn,
        "SELECT secret_sealed, event_types, user_id FROM webhooks WHERE webhook_id = %s",
        (webhook.webhook_id,),
    )
    assert webhook.secret.encode() not in sealed and webhook.secret[6:].encode() not in sealed
    assert unseal(sealed, TEST_WEBHOOK_KEY, webhook.webhook_id) == webhook.secret
    assert (types, user_id) == ("payment.received,topup.succeeded", alice.user_id)

    [shown] = await listed(alice)
    assert shown.webhook_id == webhook.webhook_id and shown.secret == ""
    assert list(shown.event_types) == ["payment.received", "topup.succeeded"]
    all_types = (await create(alice)).webhook_create.webhook
    assert list(all_types.event_types) == [] and all_types.secret != webhook.secret
    bob = await new_session(client, "bob")
    assert await listed(bob) == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "url is required"),
        ("ftp://127.0.0.1/hook", "http:// or https://"),
        ("javascript:alert(1)", "http:// or https://"),
        ("http:///hook", "no host"),
        ("http://127.0.0.1:99999/hook", "invalid port"),
        ("http://user:pw@127.0.0.1/hook", "user name or password"),
        ("http://127.0.0.1/a b", "spaces or control characters"),
        ("http://127.0.0.1/\x00", "spaces or control characters"),
        ("http://127.0.0.1/caf\u00e9", "must be ASCII"),
        ("http://b\u00fccher.example/hook", "must be ASCII"),
        ("http://127.0.0.1/" + "a" * 2048, "at most 2048 characters"),
        ("http://no-such-host.invalid/hook", "does not resolve"),
        ("http://10.1.2.3/hook", "outside the networks webhooks may target"),
        ("http://[::1]/hook", "outside the networks webhooks may target"),
        ("http://[127.0.0.1]/hook", "malformed"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_invalid_urls(app_server, client, url, why):
    alice = await new_session(client, "alice")
    response = await create(alice, url=url)
    assert refused(response) == (400, "invalid_url")
    assert why in response.status.message
    assert await listed(alice) == []


@pytest_twisted.ensureDeferred
async def test_default_allow_list_refuses_loopback(make_server, connect):
    server = await make_server(webhook_allow=parse_allow("public"))
    alice = await new_session(await connect(server.address), "alice")
    for url in (URL, "http://localhost/hook", "https://[::ffff:127.0.0.1]/hook"):
        response = await create(alice, url=url)
        assert refused(response) == (400, "invalid_url"), url
        assert "outside the networks webhooks may target (public)" in response.status.message


@pytest_twisted.ensureDeferred
async def test_event_types_refused(app_server, client):
    alice = await new_session(client, "alice")
    for types, why in (
        (("payment.sent", "payment.sent"), "twice"),
        (("payment",), "must be one of"),
        (("",), "must be one of"),
    ):
        response = await create(alice, types=types)
        assert refused(response) == (400, "invalid_request"), types
        assert why in response.status.message
    assert await listed(alice) == []


@pytest_twisted.ensureDeferred
async def test_at_most_five_even_when_created_at_once(app_server, connect):
    alice = await new_session(await connect(), "alice")
    sessions = [Session(await connect(), alice.user, alice.login) for _ in range(8)]
    answers = await defer.gatherResults(
        [defer.ensureDeferred(create(s, url=f"{URL}/{i}")) for i, s in enumerate(sessions)]
    )
    codes = sorted(a.status.code for a in answers)
    assert codes == [201] * 5 + [422] * 3
    assert {refused(a) for a in answers if a.status.code == 422} == {(422, "too_many_webhooks")}
    assert len(await listed(alice)) == 5
    first = (await listed(alice))[0].webhook_id
    assert (await delete(alice, first)).status.code == 200
    assert (await create(alice)).status.code == 201
    assert refused(await create(alice)) == (422, "too_many_webhooks")


@pytest_twisted.ensureDeferred
async def test_idempotency_key_replays_the_same_endpoint_and_secret(app_server, client):
    alice = await new_session(client, "alice")
    first = await create(alice, types=("payment.sent",), key="wh-1")
    again = await create(alice, types=("payment.sent",), key="wh-1")
    assert (first.status.code, again.status.code) == (201, 201)
    assert (first.status.replayed, again.status.replayed) == (False, True)
    assert again.webhook_create.webhook == first.webhook_create.webhook
    assert len(await listed(alice)) == 1
    other = await create(alice, types=("payment.received",), key="wh-1")
    assert refused(other) == (422, "idempotency_key_reused")
    bob = await new_session(client, "bob")
    assert (await create(bob, types=("payment.sent",), key="wh-1")).status.replayed is False
    assert reconcile(app_server.config.mysql_dsn).ok


@pytest_twisted.ensureDeferred
async def test_delete(app_server, client):
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    webhook_id = (await create(alice)).webhook_create.webhook.webhook_id
    assert refused(await delete(bob, webhook_id)) == (404, "webhook_not_found")
    assert refused(await delete(alice, "not-an-id")) == (404, "webhook_not_found")
    assert refused(await delete(alice, "00000000-0000-4000-8000-000000000000")) == (
        404,
        "webhook_not_found",
    )
    assert (await delete(alice, webhook_id.upper())).status.code == 200  # either case
    assert await listed(alice) == []
    assert refused(await delete(alice, webhook_id)) == (404, "webhook_not_found")
    [(state,)] = sql(
        app_server.config.mysql_dsn,
        "SELECT state FROM webhooks WHERE webhook_id = %s",
        (webhook_id,),
    )
    assert state == "deleted"


def record_attempts(dsn: str, webhook_id: str, user_id: int, count: int) -> list[str]:
    """Write ``count`` events of the user, one delivery each to the endpoint and two
    attempts per delivery (a 500, then a 200), as the delivery workers would; the event
    ids, oldest first."""
    [(internal,)] = sql(dsn, "SELECT id FROM webhooks WHERE webhook_id = %s", (webhook_id,))
    at = datetime(2026, 1, 2, 3, 4, 5, 678901)
    event_ids = []
    for n in range(count):
        event_id = f"evt_test{n:028d}"
        event_ids.append(event_id)
        sql(
            dsn,
            "INSERT INTO events (event_id, user_id, type, data, created_at)"
            " VALUES (%s, %s, 'topup.succeeded', '{}', %s)",
            (event_id, user_id, at),
        )
        sql(
            dsn,
            "INSERT INTO deliveries (webhook_id, event_id, state, attempts, next_attempt_at,"
            " created_at, updated_at) SELECT %s, id, 'succeeded', 2, %s, %s, %s"
            " FROM events WHERE event_id = %s",
            (internal, at, at, at, event_id),
        )
        for attempt, code, error in ((1, 500, "HTTP 500"), (2, 200, "")):
            sql(
                dsn,
                "INSERT INTO delivery_attempts (delivery_id, webhook_id, attempt, status_code,"
                " error, duration_ms, attempted_at) SELECT d.id, %s, %s, %s, %s, %s, %s"
                " FROM deliveries AS d JOIN events AS e ON e.id = d.event_id"
                " WHERE e.event_id = %s",
                (internal, attempt, code, error, 10 * attempt, at, event_id),
            )
            at += timedelta(seconds=1)
    return event_ids


@pytest_twisted.ensureDeferred
async def test_deliveries_log_newest_first_paginated(app_server, client):
    alice = await new_session(client, "alice")
    bob = await new_session(client, "bob")
    webhook_id = (await create(alice)).webhook_create.webhook.webhook_id
    empty = await deliveries(alice, webhook_id)
    assert (empty.status.code, list(empty.deliveries.deliveries)) == (200, [])
    event_ids = record_attempts(app_server.config.mysql_dsn, webhook_id, alice.user_id, 3)

    seen: list[pb.Delivery] = []
    cursor = ""
    while True:
        page = await deliveries(alice, webhook_id, limit=4, cursor=cursor)
        assert page.status.code == 200, page.status
        seen += page.deliveries.deliveries
        cursor = page.deliveries.next_cursor
        if not cursor:
            break
    assert [(d.event_id, d.attempt) for d in seen] == [
        (event_id, attempt) for event_id in reversed(event_ids) for attempt in (2, 1)
    ]
    newest, oldest = seen[0], seen[-1]
    assert (newest.status_code, newest.error, newest.duration_ms) == (200, "", 20)
    assert (oldest.status_code, oldest.error, oldest.duration_ms) == (500, "HTTP 500", 10)
    assert oldest.attempted_at == "2026-01-02T03:04:05.678901Z"

    assert refused(await deliveries(bob, webhook_id)) == (404, "webhook_not_found")
    assert refused(await deliveries(alice, "nope")) == (404, "webhook_not_found")
    assert refused(await deliveries(alice, webhook_id, limit=101)) == (400, "invalid_request")
    assert refused(await deliveries(alice, webhook_id, cursor="bad")) == (400, "invalid_request")
    assert (await delete(alice, webhook_id)).status.code == 200
    kept = await deliveries(alice, webhook_id, limit=100)
    assert len(kept.deliveries.deliveries) == 6
