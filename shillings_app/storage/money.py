"""The statements of payments and top-ups (SPEC §4). The rules that choose among them live
in the operations' transaction functions (``handlers/pay.py``, ``handlers/topup.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shillings_app.storage.auth import REVOKED
from shillings_app.storage.idempotency import JOINED, STORED

PAY_LOOKUP = f"SELECT {REVOKED}, (SELECT user_id FROM users WHERE email = %s), {STORED}{JOINED}"
"""One round trip for what a payment checks before locking: is the token revoked, who is
the receiver, and the idempotency key's earlier use (``idempotency.STORED``, or NULLs).
Parameters: token id, receiver email, sender id, key."""

TOPUP_LOOKUP = f"SELECT {REVOKED}, {STORED}{JOINED}"
"""The same for a top-up: revoked token and the key's earlier use. Parameters: token id,
user id, key."""


ACTIVE_RULE = "h.payer_id = {user} AND h.state = 'held' AND h.expires_at > UTC_TIMESTAMP(6)"
ACTIVE_HOLDS = f"holds AS h WHERE {ACTIVE_RULE}"
"""The held rule (SPEC §6), as a FROM … WHERE clause: a user's holds as payer in state
'held' whose expiry is still ahead on the database's clock, so an expired hold stops
counting at ``expires_at`` before the sweep marks it. ``{user}`` is the SQL expression of
the user id."""

ACTIVE_HELD = f"(SELECT COALESCE(SUM(h.amount), 0) FROM {ACTIVE_HOLDS})"
"""SQL of a user's ``held``: the sum of their active holds (``ACTIVE_HOLDS``)."""

CURRENT_HELD = (
    "(SELECT COALESCE(SUM(h.amount), 0) FROM holds AS h FORCE INDEX (holds_payer_active)"
    f" WHERE {ACTIVE_RULE} LOCK IN SHARE MODE)"
)
"""``ACTIVE_HELD`` read current, for ``lock_users``: a plain subquery is a consistent read
from the transaction's snapshot (taken by its first read, before the row lock was
granted), which misses holds committed meanwhile and would let two holds (or a hold and a
payment) spend the same ``available``. The index is forced: left to itself the optimizer
scanned the holds' primary key, share-locking every hold, and hold creations deadlocked on
those locks (42 of 1,134 bench holds answered 503)."""

NEXT_HOLD_EXPIRY = f"(SELECT MIN(h.expires_at) FROM {ACTIVE_HOLDS})"
"""SQL of when the user's ``held`` next shrinks by itself: the earliest expiry of their
active holds (NULL: none)."""


@dataclass(frozen=True)
class Locked:
    """A user's row as locked: balance, email and what their active holds reserve."""

    balance: int
    email: str
    held: int

    @property
    def available(self) -> int:
        return self.balance - self.held


def lock_users(txn: Any, *user_ids: int) -> dict[int, Locked]:
    """Lock the users' rows in one statement and return user id -> ``Locked`` for those
    that exist. InnoDB walks the primary key upwards, so the rows are locked in ascending
    user id order and opposite payments cannot deadlock. Holds are only created and
    released under their payer's row lock, so ``held`` (read current: ``CURRENT_HELD``)
    cannot change until COMMIT."""
    marks = ", ".join(["%s"] * len(user_ids))
    txn.execute(
        f"SELECT user_id, balance, email, {CURRENT_HELD.format(user='users.user_id')}"
        f" FROM users WHERE user_id IN ({marks}) ORDER BY user_id FOR UPDATE",
        user_ids,
    )
    return {int(r[0]): Locked(int(r[1]), r[2], int(r[3])) for r in txn.fetchall()}


def move(txn: Any, sender_id: int, receiver_id: int, amount: int) -> None:
    """Take ``amount`` cents from the sender and give them to the receiver, in one UPDATE."""
    txn.execute(
        "UPDATE users SET balance = balance + IF(user_id = %s, -%s, %s),"
        " updated_at = UTC_TIMESTAMP(6) WHERE user_id IN (%s, %s)",
        (sender_id, amount, amount, sender_id, receiver_id),
    )


def credit(txn: Any, user_id: int, amount: int) -> None:
    """Add ``amount`` cents to the user's balance."""
    txn.execute(
        "UPDATE users SET balance = balance + %s, updated_at = UTC_TIMESTAMP(6) WHERE user_id = %s",
        (amount, user_id),
    )


def insert_transaction(
    txn: Any,
    *,
    kind: str,
    sender: tuple[int, str] | None,
    receiver: tuple[int, str],
    amount: int,
    at: datetime,
    hold_id: str | None = None,
    refund_of: str | None = None,
) -> str:
    """Record a ledger row (``sender`` None for a top-up) made at ``at``; return its new
    transaction id."""
    transaction_id = str(uuid.uuid4())
    txn.execute(
        "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email,"
        " receiver_id, receiver_email, amount, created_at, hold_id, refund_of)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            transaction_id,
            kind,
            sender[0] if sender else None,
            sender[1] if sender else None,
            receiver[0],
            receiver[1],
            amount,
            at,
            hold_id,
            refund_of,
        ),
    )
    return transaction_id


def now() -> datetime:
    """The time a change is made, naive UTC with microseconds as the DATETIME(6) columns
    hold it: the ledger row and its events carry the same instant."""
    return datetime.now(UTC).replace(tzinfo=None)
