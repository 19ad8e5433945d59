"""Baseline (c) is the app server's pay transaction for one payment
(``handlers.pay.pay_batch_txn`` with a batch of one): two round trips, both rows locked by one
ascending-id ``FOR UPDATE``, COMMIT in the second (no database: it runs against a cursor that
records what it is asked)."""

from __future__ import annotations

import re
from typing import Any

import pymysql

from bench import dbceiling
from shillings_app.handlers.pay import Payment, pay_batch_txn
from shillings_app.storage.database import Attempt, Txn

SENDER, RECEIVER = (7, "s@example.com"), (3, "r@example.com")


class RecordingCursor:
    """Answers a payment's statements the way MariaDB would for two known users."""

    connection = pymysql.connect(defer_connect=True)
    """Unconnected: what ``storage.database.mogrify`` reads (server status, escaping)."""
    connection.server_status = 0

    def __init__(self) -> None:
        self.sent: list[tuple[str, tuple[Any, ...]]] = []
        self._last = ""
        self._results: list[list[tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.sent.append((sql, tuple(params or ())))
        self._last = sql
        if sql.startswith("SET @"):  # receiver ids; locks; users with an endpoint; revoked
            self._results = [
                [],
                [(RECEIVER[0], 1000, RECEIVER[1], 0), (SENDER[0], 1000, SENDER[1], 0)],
                [],
                [],
            ]

    def mogrify(self, sql: str, params: Any) -> str:
        return sql if not params else f"{sql} /* {len(params)} values */"

    def nextset(self) -> bool | None:
        if len(self._results) > 1:
            self._results.pop(0)
            return True
        self._results = []
        return None

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._last.startswith("SELECT 1 FROM revoked_tokens"):
            return None
        if self._last.startswith("SELECT user_id FROM users WHERE email"):
            return (RECEIVER[0],)
        user_id = self.sent[-1][1][0]
        return (1000, SENDER[1] if user_id == SENDER[0] else RECEIVER[1])

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._results[0] if self._results else []


def _app_statements(amount: int) -> list[tuple[str, tuple[Any, ...]]]:
    cursor = RecordingCursor()
    [result] = pay_batch_txn(
        Txn(cursor, Attempt("pay", None)),
        [Payment(SENDER[0], "jti-of-the-token", RECEIVER[1], amount, None)],
    )
    assert result.balance == 1000 - amount
    return cursor.sent


def _shape(sent: list[tuple[str, tuple[Any, ...]]]) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements with the values that differ per call (token id, uuids, time) blanked."""
    out = []
    for sql, params in sent:
        if "INSERT INTO" in sql:
            sql = sql.split("INSERT INTO")[0]
        sql = re.sub(r"jti IN \('[^']*'\)", "jti IN ('<jti>')", sql)  # values are in the text
        out.append((sql, params))
    return out


def test_ceiling_sends_the_statements_of_the_app_servers_pay():
    cursor = RecordingCursor()
    dbceiling._pay(cursor, SENDER, RECEIVER[1])
    assert len(cursor.sent) == 2  # round trips
    assert _shape(cursor.sent) == _shape(_app_statements(amount=1))
    reads, writes = (sql for sql, _ in cursor.sent)
    assert reads.count("FOR UPDATE") == 1  # one statement locks both, ORDER BY user_id
    assert (
        f"WHERE user_id IN ({SENDER[0]}, @shillings_receiver_0) ORDER BY user_id FOR UPDATE"
        in reads
    )
    assert writes.startswith("UPDATE users") and writes.endswith(";COMMIT")


def test_old_sql_ceiling_is_not_the_apps_sql_any_more():
    cursor = RecordingCursor()
    dbceiling._pay_7stmt(cursor, SENDER, RECEIVER[1])
    assert len(cursor.sent) == 7
    assert [sql for sql, _ in cursor.sent] != [sql for sql, _ in _app_statements(amount=1)]
    locked = [p[0] for sql, p in cursor.sent if sql.endswith("FOR UPDATE")]
    assert locked == sorted(locked) == [RECEIVER[0], SENDER[0]]
