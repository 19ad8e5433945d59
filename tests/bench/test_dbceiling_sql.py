"""Baseline (c) sends the SQL MoneyStore.pay sends, statement for statement (no database:
both run against a cursor that records what it is asked)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bench import dbceiling
from shillings_app.storage.money import MoneyStore

SENDER, RECEIVER = (7, "s@example.com"), (3, "r@example.com")


class RecordingCursor:
    """Answers a payment's statements the way MariaDB would for two known users."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self._last = ""

    def execute(self, sql: str, params: tuple[Any, ...]) -> None:
        self.sent.append((sql, params))
        self._last = sql

    def fetchone(self) -> tuple[Any, ...] | None:
        if "idempotency_keys" in self._last:
            return (0, RECEIVER[0], None, None)
        if self._last.startswith("SELECT 1 FROM revoked_tokens"):
            return None
        if self._last.startswith("SELECT user_id FROM users WHERE email"):
            return (RECEIVER[0],)
        user_id = self.sent[-1][1][0]
        return (1000, SENDER[1] if user_id == SENDER[0] else RECEIVER[1])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [(RECEIVER[0], 1000, RECEIVER[1]), (SENDER[0], 1000, SENDER[1])]


class RecordingDatabase:
    def __init__(self, cursor: RecordingCursor) -> None:
        self.cursor = cursor

    async def run(self, desc: str, func: Callable[[Any], Any]) -> Any:
        return func(self.cursor)


def _drive(coro: Awaitable[Any]) -> Any:
    """Run a coroutine that never suspends (its database answers at once)."""
    try:
        coro.__await__().send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("the coroutine suspended")


def _app_statements(amount: int) -> list[tuple[str, tuple[Any, ...]]]:
    cursor = RecordingCursor()
    store = MoneyStore()
    store.db = RecordingDatabase(cursor)  # type: ignore[assignment]
    result = _drive(
        store.pay(
            sender_id=SENDER[0],
            token_id="jti-of-the-token",
            receiver_email=RECEIVER[1],
            amount=amount,
            idempotency=None,
            encode=lambda r: b"",
        )
    )
    assert result.sender_balance == 1000 - amount
    return cursor.sent


def _shape(sent: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements with the values that differ per call (token id, uuid) blanked."""
    out = []
    for sql, params in sent:
        if sql.startswith("INSERT INTO transactions"):
            params = ("<uuid>", *params[1:])
        elif "revoked_tokens" in sql:
            params = ("<jti>", *params[1:])
        out.append((sql, params))
    return out


def test_ceiling_sends_the_statements_of_money_store_pay():
    cursor = RecordingCursor()
    dbceiling._pay(cursor, SENDER, RECEIVER[1])
    assert len(cursor.sent) == 4
    assert _shape(cursor.sent) == _shape(_app_statements(amount=1))


def test_old_sql_ceiling_is_not_the_apps_sql_any_more():
    cursor = RecordingCursor()
    dbceiling._pay_7stmt(cursor, SENDER, RECEIVER[1])
    assert len(cursor.sent) == 7
    assert [sql for sql, _ in cursor.sent] != [sql for sql, _ in _app_statements(amount=1)]
    locked = [p[0] for sql, p in cursor.sent if sql.endswith("FOR UPDATE")]
    assert locked == sorted(locked) == [RECEIVER[0], SENDER[0]]
