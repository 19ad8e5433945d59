"""Housekeeping: old idempotency keys and expired revocations are purged, batch after batch,
and what must be kept is kept."""

from __future__ import annotations

import pymysql
import pytest_twisted

from shillings_app.config import parse_dsn
from shillings_app.storage.housekeeping import PURGE_BATCH
from tests.app.helpers import sql


def _fill(dsn: str, old_keys: int, old_tokens: int) -> None:
    conn = pymysql.connect(**parse_dsn(dsn), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO idempotency_keys"
                " (user_id, idem_key, command, request_hash, transaction_id, balance, status,"
                " created_at) VALUES (1, %s, 'PAY', REPEAT('x', 32), REPEAT('t', 36), 0, 200,"
                " UTC_TIMESTAMP(6) - INTERVAL %s HOUR)",
                [(f"old-{i}", 26) for i in range(old_keys)] + [("fresh-1", 23), ("fresh-2", 1)],
            )
            cur.executemany(
                "INSERT INTO revoked_tokens (jti, user_id, expires_at, revoked_at)"
                " VALUES (%s, 1, UTC_TIMESTAMP(6) + INTERVAL %s MINUTE, UTC_TIMESTAMP(6))",
                [(f"gone-{i}", -5) for i in range(old_tokens)] + [("live", 30)],
            )
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_purge_removes_everything_expired_in_batches_and_keeps_the_rest(app_server):
    old_keys = PURGE_BATCH * 2 + 17
    _fill(app_server.dsn, old_keys, old_tokens=3)
    await app_server.purge()
    keys = sorted(row[0] for row in sql(app_server.dsn, "SELECT idem_key FROM idempotency_keys"))
    assert keys == ["fresh-1", "fresh-2"]
    tokens = [row[0] for row in sql(app_server.dsn, "SELECT jti FROM revoked_tokens")]
    assert tokens == ["live"]
