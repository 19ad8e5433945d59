"""Revoked tokens, health and housekeeping."""

from __future__ import annotations

from typing import Any

from shillings_app.errors import Unauthenticated
from shillings_app.storage.auth import check_not_revoked
from shillings_app.storage.database import Database

IDEMPOTENCY_RETENTION_HOURS = 25
"""Idempotency keys are kept at least this long (SPEC: at least 24 h)."""
PURGE_BATCH = 1000


class TokenStore:
    db: Database

    async def revoke(self, user_id: int, token_id: str, expires_at: int) -> None:
        """Revoke the token until ``expires_at`` (unix seconds); ``Unauthenticated`` if the
        user does not exist or the token is already revoked."""

        def txn_fn(txn: Any) -> None:
            check_not_revoked(txn, token_id)
            txn.execute("SELECT 1 FROM users WHERE user_id = %s", (user_id,))
            if txn.fetchone() is None:
                raise Unauthenticated()
            txn.execute(
                "INSERT IGNORE INTO revoked_tokens (jti, user_id, expires_at, revoked_at)"
                " VALUES (%s, %s, FROM_UNIXTIME(%s), UTC_TIMESTAMP(6))",
                (token_id, user_id, expires_at),
            )

        await self.db.run("revoke", txn_fn)

    async def ping(self) -> None:
        def txn_fn(txn: Any) -> None:
            txn.execute("SELECT 1")
            txn.fetchall()

        await self.db.run("ping", txn_fn)

    async def purge_expired(self) -> tuple[int, int]:
        """Delete a batch of expired revocations and old idempotency keys; return the counts."""

        def txn_fn(txn: Any) -> tuple[int, int]:
            txn.execute(
                "DELETE FROM revoked_tokens WHERE expires_at < UTC_TIMESTAMP(6) LIMIT %s",
                (PURGE_BATCH,),
            )
            tokens = txn.rowcount
            txn.execute(
                "DELETE FROM idempotency_keys"
                " WHERE created_at < UTC_TIMESTAMP(6) - INTERVAL %s HOUR LIMIT %s",
                (IDEMPOTENCY_RETENTION_HOURS, PURGE_BATCH),
            )
            return tokens, txn.rowcount

        return await self.db.run("purge_expired", txn_fn)
