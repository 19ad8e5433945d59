"""The JSON body of each successful answer, from its protobuf response: one table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from shillings_proto import pb
from shillings_proto.shapes import format_cents, transaction_json


def user_json(user: pb.User) -> dict[str, Any]:
    """The API shape of a user; ``middle_name`` is "" when none was given."""
    return {
        "user_id": user.user_id,
        "first_name": user.first_name,
        "middle_name": user.middle_name,
        "last_name": user.last_name,
        "email": user.email,
        "phone": user.phone,
        "balance": format_cents(user.balance),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


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
}
"""Response body field -> the JSON fields of the answer beside ``status``."""
