"""Storage records to protobuf messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from shillings_app.storage.events import NewEvent
from shillings_app.storage.holds import HoldRecord
from shillings_app.storage.records import TransactionRecord, UserRecord
from shillings_proto import pb, shapes


def rfc3339(value: datetime) -> str:
    """A naive UTC datetime as RFC 3339 with microseconds, e.g. 2026-11-24T19:39:34.123456Z."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_EPOCH = datetime(1970, 1, 1)


def unix_ms(value: datetime) -> int:
    """A naive UTC datetime as unix milliseconds (rounded down)."""
    return (value - _EPOCH) // timedelta(milliseconds=1)


def user_message(user: UserRecord) -> pb.User:
    return pb.User(
        user_id=user.user_id,
        first_name=user.first_name,
        middle_name=user.middle_name or "",
        last_name=user.last_name,
        email=user.email,
        phone=user.phone,
        balance=user.balance,
        created_at=rfc3339(user.created_at),
        updated_at=rfc3339(user.updated_at),
        held=user.held,
        available=user.balance - user.held,
        next_hold_expiry_ms=unix_ms(user.next_hold_expiry) if user.next_hold_expiry else 0,
    )


def transaction_message(tx: TransactionRecord) -> pb.Transaction:
    """One ledger row as stored (``sender_email`` None for a top-up)."""
    return ledger_message(
        tx.transaction_id,
        tx.kind,
        tx.sender_email,
        tx.receiver_email,
        tx.amount,
        tx.created_at,
        hold_id=tx.hold_id,
        refund_of=tx.refund_of,
        refunded_amount=tx.refunded_amount,
    )


def ledger_message(
    transaction_id: str,
    kind: str,
    sender_email: str | None,
    receiver_email: str,
    amount: int,
    at: datetime,
    *,
    hold_id: str | None = None,
    refund_of: str | None = None,
    refunded_amount: int = 0,
) -> pb.Transaction:
    """A ledger row as just written (for event data, ``shapes.transaction_json``)."""
    return pb.Transaction(
        transaction_id=transaction_id,
        sender_email=sender_email,
        receiver_email=receiver_email,
        amount=amount,
        created_at=rfc3339(at),
        kind=kind,
        hold_id=hold_id,
        refund_of=refund_of,
        refunded_amount=refunded_amount if kind in shapes.REFUNDABLE else None,
    )


def hold_message(hold: HoldRecord) -> pb.Hold:
    return pb.Hold(
        hold_id=hold.hold_id,
        payer_email=hold.payer_email,
        receiver_email=hold.receiver_email,
        amount=hold.amount,
        captured_amount=hold.captured_amount,
        state=hold.state,
        expires_at=rfc3339(hold.expires_at),
        created_at=rfc3339(hold.created_at),
        updated_at=rfc3339(hold.updated_at),
        capture_transaction_id=hold.capture_transaction_id,
    )


def hold_events(hold: HoldRecord, type_: str) -> list[NewEvent]:
    """The event ``type_`` for the hold's payer and receiver, with the hold as data."""
    data = shapes.hold_json(hold_message(hold))
    return [NewEvent(hold.payer_id, type_, data), NewEvent(hold.receiver_id, type_, data)]
