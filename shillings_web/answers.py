"""The JSON body of each successful answer, from its protobuf response: one table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any

from shillings_proto import pb
from shillings_proto.shapes import event_json, format_cents, hold_json, transaction_json


def user_json(user: pb.User) -> dict[str, Any]:
    """The API shape of a user; ``middle_name`` is "" when none was given; ``held`` and
    ``available`` as SPEC §6 defines them."""
    return {
        "user_id": user.user_id,
        "first_name": user.first_name,
        "middle_name": user.middle_name,
        "last_name": user.last_name,
        "email": user.email,
        "phone": user.phone,
        "balance": format_cents(user.balance),
        "held": format_cents(user.held),
        "available": format_cents(user.available),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def webhook_json(webhook: pb.Webhook) -> dict[str, Any]:
    """An endpoint; ``secret`` only in the answer that created it."""
    shape: dict[str, Any] = {
        "webhook_id": webhook.webhook_id,
        "url": webhook.url,
        "event_types": list(webhook.event_types),
        "state": webhook.state,
        "secret": webhook.secret,
        "created_at": webhook.created_at,
    }
    if not webhook.secret:
        del shape["secret"]
    return shape


def rfc3339(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


JSON: dict[str, Callable[[pb.Response], dict[str, Any]]] = {
    "signup": lambda r: {"user": user_json(r.signup.user)},
    "login": lambda r: {
        "token": r.login.token,
        "token_type": "Bearer",
        "expires_at": rfc3339(r.login.expires_at),
        "user": user_json(r.login.user),
    },
    "profile": lambda r: {"user": user_json(r.profile.user)},
    "revoke": lambda r: {},
    "topup": lambda r: {
        "transaction_id": r.topup.transaction_id,
        "balance": format_cents(r.topup.balance),
    },
    "pay": lambda r: {
        "transaction_id": r.pay.transaction_id,
        "balance": format_cents(r.pay.sender_balance),
    },
    "refund": lambda r: {
        "refund": transaction_json(r.refund.refund),
        "balance": format_cents(r.refund.balance),
    },
    "transactions": lambda r: {
        "transactions": [transaction_json(tx) for tx in r.transactions.transactions],
        "next_cursor": r.transactions.next_cursor or None,
    },
    "hold": lambda r: {
        "hold": hold_json(r.hold.hold),
        "available": format_cents(r.hold.available),
    },
    "capture": lambda r: {
        "hold": hold_json(r.capture.hold),
        "transaction_id": r.capture.transaction_id,
    },
    "void": lambda r: {"hold": hold_json(r.void.hold)},
    "holds": lambda r: {
        "holds": [hold_json(hold) for hold in r.holds.holds],
        "next_cursor": r.holds.next_cursor or None,
    },
    "events": lambda r: {
        "events": [event_json(e) for e in r.events.events],
        "next_cursor": r.events.next_cursor or None,
    },
    "webhook_create": lambda r: {"webhook": webhook_json(r.webhook_create.webhook)},
    "webhooks": lambda r: {"webhooks": [webhook_json(w) for w in r.webhooks.webhooks]},
    "webhook_delete": lambda r: {},
    "deliveries": lambda r: {
        "deliveries": [
            {
                "event_id": d.event_id,
                "attempt": d.attempt,
                "status_code": d.status_code or None,
                "error": d.error,
                "duration_ms": d.duration_ms,
                "attempted_at": d.attempted_at,
            }
            for d in r.deliveries.deliveries
        ],
        "next_cursor": r.deliveries.next_cursor or None,
    },
}
"""Response body field -> the JSON fields of the answer beside ``status``."""


def _transaction_and_balance(transaction_id: str, balance: int) -> bytes:
    """``"transaction_id":...,"balance":...`` as ``errors.encode`` writes them (strings
    escaped by the encoder's own function, non-ASCII kept)."""
    return (
        f'"transaction_id":{encode_basestring(transaction_id)},"balance":"{format_cents(balance)}"'
    ).encode()


ENCODED: dict[str, Callable[[pb.Response], bytes]] = {
    "topup": lambda r: _transaction_and_balance(r.topup.transaction_id, r.topup.balance),
    "pay": lambda r: _transaction_and_balance(r.pay.transaction_id, r.pay.sender_balance),
}
"""The answers of the busiest calls, written as JSON fields directly: the same bytes as
``JSON``'s dict through the encoder (test), without building and encoding the document."""
