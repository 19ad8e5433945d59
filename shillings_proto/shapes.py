"""The JSON shapes of the API's objects, built from protobuf messages: one definition used
by the web layer for its answers and by the app server for event data (SPEC §7: an event's
``data`` is the transaction or hold as the API shows it)."""

from __future__ import annotations

import json
from typing import Any

from shillings_proto import pb

REFUNDABLE = ("payment", "capture")
"""The kinds of transaction that can be refunded, so carry ``refunded_amount``."""


def format_cents(cents: int) -> str:
    """12345 -> "123.45"; exactly two decimal places."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def transaction_json(tx: pb.Transaction) -> dict[str, Any]:
    """A ledger row; ``refunded_amount`` only on payments and captures."""
    shape: dict[str, Any] = {
        "transaction_id": tx.transaction_id,
        "sender_email": tx.sender_email if tx.HasField("sender_email") else None,
        "receiver_email": tx.receiver_email,
        "amount": format_cents(tx.amount),
        "created_at": tx.created_at,
        "kind": tx.kind,
        "hold_id": tx.hold_id if tx.HasField("hold_id") else None,
        "refund_of": tx.refund_of if tx.HasField("refund_of") else None,
    }
    if tx.kind in REFUNDABLE:
        shape["refunded_amount"] = format_cents(tx.refunded_amount)
    return shape


def hold_json(hold: pb.Hold) -> dict[str, Any]:
    return {
        "hold_id": hold.hold_id,
        "payer_email": hold.payer_email,
        "receiver_email": hold.receiver_email,
        "amount": format_cents(hold.amount),
        "captured_amount": format_cents(hold.captured_amount),
        "state": hold.state,
        "expires_at": hold.expires_at,
        "created_at": hold.created_at,
        "updated_at": hold.updated_at,
        "capture_transaction_id": (
            hold.capture_transaction_id if hold.HasField("capture_transaction_id") else None
        ),
    }


def event_json(event: pb.Event) -> dict[str, Any]:
    """An event as ``GET /v1/events`` lists it and a webhook delivery sends it (SPEC §7):
    ``data`` is the stored JSON object of the transaction or hold."""
    return {
        "event_id": event.event_id,
        "type": event.type,
        "created_at": event.created_at,
        "data": json.loads(event.data_json),
    }
