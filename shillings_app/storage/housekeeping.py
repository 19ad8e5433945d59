"""Health and housekeeping: the database answers; expired rows are purged."""

from __future__ import annotations

from typing import Any

IDEMPOTENCY_RETENTION_HOURS = 25
"""Idempotency keys are kept at least this long (SPEC: at least 24 h)."""
PURGE_BATCH = 1000


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
