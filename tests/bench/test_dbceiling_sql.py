"""Baseline (c) is the app server's pay transaction for one payment
(``handlers.pay.pay_batch_txn`` with a batch of one): 5 statements, both rows locked by one
ascending-id ``FOR UPDATE`` (no database: it runs against a cursor that records what it is
asked)."""

from __future__ import annotations

from typing import Any

from bench import dbceiling
from shillings_app.handlers.pay import Payment, pay_batch_txn

SENDER, RECEIVER = (7, "s@example.com"), (3, "r@example.com")


class RecordingCursor:
    """Answers a payment's statements the way MariaDB would for two known users."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self._last = ""

    def execute(self, sql: str, params: Any) -> None:
        self.sent.append((sql, tuple(params)))
        self._last = sql

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._last.startswith("SELECT 1 FROM revoked_tokens"):
            return None
        if self._last.startswith("SELECT user_id FROM users WHERE email"):
            return (RECEIVER[0],)
        user_id = self.sent[-1][1][0]
        return (1000, SENDER[1] if user_id == SENDER[0] else RECEIVER[1])

    def fetchall(self) -> list[tuple[Any, ...]]:
        if "idempotency_keys" in self._last:
            return [(0, 0, RECEIVER[0], None, None, None, None)]
        return [(RECEIVER[0], 1000, RECEIVER[1], 0), (SENDER[0], 1000, SENDER[1], 0)]


def _app_statements(amount: int) -> list[tuple[str, tuple[Any, ...]]]:
    cursor = RecordingCursor()
    [result] = pay_batch_txn(
        cursor, [Payment(SENDER[0], "jti-of-the-token", RECEIVER[1], amount, None)]
    )
    assert result.balance == 1000 - amount
    return cursor.sent


def _shape(sent: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements with the values that differ per call (token id, uuids, time) blanked."""
    out = []
    for sql, params in sent:
        if sql.startswith("INSERT INTO"):
            params = ()
        elif "revoked_tokens" in sql:
            params = (params[0], "<jti>", *params[2:])
        out.append((sql, params))
    return out


def test_ceiling_sends_the_statements_of_the_app_servers_pay():
    cursor = RecordingCursor()
    dbceiling._pay(cursor, SENDER, RECEIVER[1])
    assert len(cursor.sent) == 5
    assert _shape(cursor.sent) == _shape(_app_statements(amount=1))
    locked = [p for sql, p in cursor.sent if sql.endswith("FOR UPDATE")]
    assert locked == [(RECEIVER[0], SENDER[0])]  # one statement, ORDER BY user_id


def test_old_sql_ceiling_is_not_the_apps_sql_any_more():
    cursor = RecordingCursor()
    dbceiling._pay_7stmt(cursor, SENDER, RECEIVER[1])
    assert len(cursor.sent) == 7
    assert [sql for sql, _ in cursor.sent] != [sql for sql, _ in _app_statements(amount=1)]
    locked = [p[0] for sql, p in cursor.sent if sql.endswith("FOR UPDATE")]
    assert locked == sorted(locked) == [RECEIVER[0], SENDER[0]]
