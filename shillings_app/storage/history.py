"""Transaction history with keyset pagination on the internal id, newest first."""

from __future__ import annotations

from typing import Any

from shillings_app.storage.auth import authenticate
from shillings_app.storage.records import TRANSACTION_COLUMNS, TransactionRecord


def transactions_txn(
    txn: Any, user_id: int, token_id: str, hold_id: str, limit: int, before_id: int | None
) -> list[TransactionRecord]:
    """Up to ``limit`` transactions the user sent or received with id < ``before_id``
    (all when None), newest first; only those naming ``hold_id`` when it is given. Each
    branch of the UNION walks its own ``(sender_id, id)`` / ``(receiver_id, id)`` index, so
    a page costs O(limit)."""
    authenticate(txn, user_id, token_id)
    upper = before_id if before_id is not None else 2**63
    if hold_id:
        txn.execute(
            f"SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE hold_id = %s"
            " AND (sender_id = %s OR receiver_id = %s) AND id < %s ORDER BY id DESC LIMIT %s",
            (hold_id, user_id, user_id, upper, limit),
        )
        return [TransactionRecord(*row) for row in txn.fetchall()]
    txn.execute(
        f"(SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE sender_id = %s AND id < %s"
        " ORDER BY id DESC LIMIT %s)"
        " UNION "
        f"(SELECT {TRANSACTION_COLUMNS} FROM transactions WHERE receiver_id = %s AND id < %s"
        " ORDER BY id DESC LIMIT %s)"
        " ORDER BY id DESC LIMIT %s",
        (user_id, upper, limit, user_id, upper, limit, limit),
    )
    return [TransactionRecord(*row) for row in txn.fetchall()]
