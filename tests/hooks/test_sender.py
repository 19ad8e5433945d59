"""The sender's parts on their own: the connection goes to the vetted address whatever the
host name resolves to later (DNS rebinding), and what it signs verifies."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_twisted
from standardwebhooks import Webhook, WebhookVerificationError
from treq.client import HTTPClient
from twisted.logger import formatEvent, globalLogPublisher
from twisted.web.client import Agent

from shillings_app.hooks.sender import Sender, _Pinned, payload, signed_headers
from shillings_app.storage.deliveries import Claimed
from shillings_app.webhooks.allow import parse_allow
from shillings_app.webhooks.secrets import new_secret
from tests.hooks.receiver import FAIL

CLAIMED = Claimed(
    delivery_id=1,
    attempts=0,
    lease=datetime(2026, 11, 30, 12, 0, 30),
    webhook_row=1,
    webhook_id="w",
    url="http://example.com/hook",
    secret_sealed=b"",
    failing=False,
    event_id="evt_0123",
    event_type="payment.received",
    event_data='{"amount":"12.50","note":"é"}',
    event_created_at=datetime(2026, 11, 30, 12, 0, 0, 123456),
)


@pytest_twisted.ensureDeferred
async def test_connects_to_the_vetted_address_not_to_a_new_resolution(receiver):
    from twisted.internet import reactor

    endpoint = receiver.add("pinned", new_secret(), mode=FAIL)
    # The name does not resolve at all: only the pinned address can have been used.
    url = receiver.url("pinned", host="rebound.invalid")
    pinned = _Pinned(reactor, ipaddress.ip_address("127.0.0.1"), 5.0)
    client = HTTPClient(Agent.usingEndpointFactory(reactor, pinned))
    response = await client.post(url, data=b"{}")
    await response.content()
    assert response.code == 500
    assert endpoint.requests == 1


def test_payload_and_signature_verify_with_standardwebhooks():
    secret = new_secret()
    body = payload(CLAIMED)
    assert json.loads(body) == {
        "event_id": "evt_0123",
        "type": "payment.received",
        "created_at": "2026-11-30T12:00:00.123456Z",
        "data": {"amount": "12.50", "note": "é"},
    }
    headers = signed_headers(secret, CLAIMED.event_id, body, datetime.now(UTC))
    plain = {k.decode(): v[0].decode() for k, v in headers.getAllRawHeaders()}
    assert plain["Webhook-Id"] == "evt_0123"
    assert Webhook(secret).verify(body.encode("utf-8"), plain)["event_id"] == "evt_0123"
    tampered = body.replace("12.50", "99.50")
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered.encode("utf-8"), plain)


@pytest_twisted.ensureDeferred
async def test_a_send_logs_nothing_about_its_connection(receiver):
    """Twisted's client factory logs "Starting factory" and "Stopping factory" for every
    connection it opens unless told not to: two lines per delivery in a worker's log."""
    from twisted.internet import reactor

    secret = new_secret()
    endpoint = receiver.add("quiet", secret)
    sender = Sender(reactor, parse_allow("127.0.0.0/8"), 5.0, 2, 4)
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        claimed = dataclasses.replace(CLAIMED, url=receiver.url("quiet"))
        outcome = await sender.send(claimed, secret)
        await sender.close()
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert outcome.succeeded and endpoint.requests == 1
    assert [formatEvent(e) for e in events if "factory" in formatEvent(e).lower()] == []
