"""Revoked tokens (logout): a revocation is remembered until the token expires."""

from __future__ import annotations

from typing import Any

from shillings_app.storage.auth import authenticate


def revoke_txn(txn: Any, user_id: int, token_id: str, expires_at: int) -> None:
    """Revoke the token until ``expires_at`` (unix seconds); ``Unauthenticated`` if the
    user does not exist or the token is already revoked."""
    authenticate(txn, user_id, token_id)
    txn.execute(
        "INSERT IGNORE INTO revoked_tokens (jti, user_id, expires_at, revoked_at)"
        " VALUES (%s, %s, FROM_UNIXTIME(%s), UTC_TIMESTAMP(6))",
        (token_id, user_id, expires_at),
    )
