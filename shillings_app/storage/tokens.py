"""Revoked tokens, health and housekeeping."""

from __future__ import annotations

from typing import Any

from shillings_app.storage.auth import authenticate

IDEMPOTENCY_RETENTION_HOURS = 25
"""Idempotency keys are kept at least this long (SPEC: at least 24 h)."""
PURGE_BATCH = 1000


def revoke_txn(txn: Any, user_id: int, token_id: str, expires_at: int) -> None:
    """Revoke the token until ``expires_at`` (unix seconds); ``Unauthenticated`` if the
    user does not exist or the token is already revoked."""
    authenticate(txn, user_id, token_id)
    txn.execute(
        "INSERT IGNORE INTO revoked_tokens (jti, user_id, expires_at, revoked_at)"
        " VALUES (%s, %s, FROM_UNIXTIME(%s), UTC_TIMESTAMP(6))",
        (token_id, user_id, expires_at),
    )


def ping_txn(txn: Any) -> None:
    txn.execute("SELECT 1")
    txn.fetchall()


def purge_expired_txn(txn: Any) -> tuple[int, int]:
    """Delete a batch of expired revocations and old idempotency keys; return the counts."""
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
