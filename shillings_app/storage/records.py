"""Plain rows returned by the storage layer (no protobuf here)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

MAX_BALANCE = 10**15
"""Largest balance, in cents."""


@dataclass(frozen=True)
class UserRecord:
    user_id: int
    first_name: str
    middle_name: str | None
    last_name: str
    email: str
    phone: str
    balance: int
    created_at: datetime
    updated_at: datetime
    held: int = 0
    """What the user's active holds as payer reserve (SPEC §6)."""
    next_hold_expiry: datetime | None = None
    """The earliest expiry of those holds (None: none)."""


USER_COLUMNS = (
    "u.user_id, u.first_name, u.middle_name, u.last_name, u.email, u.phone,"
    " u.balance, u.created_at, u.updated_at"
)
"""SELECT list matching ``UserRecord`` field order (table alias ``u``)."""


def user_from_row(row: tuple) -> UserRecord:  # type: ignore[type-arg]
    return UserRecord(*row[:9])


@dataclass(frozen=True)
class TransactionRecord:
    id: int
    transaction_id: str
    kind: str
    sender_email: str | None
    receiver_email: str
    amount: int
    created_at: datetime
    hold_id: str | None
    refund_of: str | None
    refunded_amount: int


TRANSACTION_COLUMNS = (
    "id, transaction_id, kind, sender_email, receiver_email, amount, created_at,"
    " hold_id, refund_of, refunded_amount"
)
"""SELECT list matching ``TransactionRecord`` field order."""


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's idempotency key with the command and a hash of the request it came with."""

    key: str
    command: str
    request_hash: bytes


@dataclass(frozen=True)
class MoneyResult:
    """What a payment, top-up or hold operation did, as its idempotency key stores it for
    replays: the transaction it made ("" for none) and the caller's balance after it (a
    hold's creation: the payer's ``available``; 0 when the answer has none)."""

    transaction_id: str
    balance: int
    status: int = 200
    """The protocol status of the answer (stored, so a replay answers the same)."""
    replayed: bool = False
    """Read from the idempotency key of an earlier request, not done now."""
    hold_id: str | None = None
    """The hold made or changed (hold commands only)."""
    refusal: str | None = None
    """A refusal (``status`` its code): its reason and message, separated by a space."""
