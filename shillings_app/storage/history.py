"""Transaction history with keyset pagination on the internal id, newest first."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import Unauthenticated
from shillings_app.storage.database import Database
from shillings_app.storage.records import TransactionRecord

_COLUMNS = "id, transaction_id, kind, sender_email, receiver_email, amount, created_at"


class HistoryStore:
    db: Database

    async def transactions(
        self, *, user_id: int, token_id: str, limit: int, before_id: int | None
    ) -> list[TransactionRecord]:
        """Up to ``limit`` transactions the user sent or received with id < ``before_id``
        (all when None), newest first. Each branch of the UNION walks its own
        ``(sender_id, id)`` / ``(receiver_id, id)`` index, so a page costs O(limit)."""
        upper = before_id if before_id is not None else 2**63

        def txn_fn(txn: Any) -> list[TransactionRecord]:
            txn.execute(
                "SELECT EXISTS(SELECT 1 FROM users WHERE user_id = %s),"
                " EXISTS(SELECT 1 FROM revoked_tokens WHERE jti = %s)",
                (user_id, token_id),
            )
            exists, revoked = txn.fetchone()
            if not exists or revoked:
                raise Unauthenticated()
            txn.execute(
                f"(SELECT {_COLUMNS} FROM transactions WHERE sender_id = %s AND id < %s"
                " ORDER BY id DESC LIMIT %s)"
                " UNION "
                f"(SELECT {_COLUMNS} FROM transactions WHERE receiver_id = %s AND id < %s"
                " ORDER BY id DESC LIMIT %s)"
                " ORDER BY id DESC LIMIT %s",
                (user_id, upper, limit, user_id, upper, limit, limit),
            )
            return [TransactionRecord(*row) for row in txn.fetchall()]

        return await self.db.run("transactions", txn_fn)
