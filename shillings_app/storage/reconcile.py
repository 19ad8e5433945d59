"""The reads of ``shillings-app reconcile``: set-based queries over one consistent snapshot.

Every query aggregates in MariaDB (GROUP BY over ``transactions`` by receiver and by
sender) and returns only totals and the first offenders, with their count, so the cost is
a few scans of the tables, not a row per transaction shipped to Python. The one thing SQL
cannot read is the transaction id inside a stored idempotency response: keys are read in
pages and their transactions looked up by id, a page at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql

from shillings_app.config import parse_dsn
from shillings_proto import pb

KEY_PAGE = 5000
"""Idempotency keys read (and their transactions looked up) per round trip."""


@dataclass(frozen=True)
class Offenders:
    """The first offending rows of a check, ordered by user id, and how many there are."""

    count: int
    rows: list[tuple[Any, ...]]


@dataclass(frozen=True)
class StoredKey:
    user_id: int
    key: str
    transaction_id: str | None


def transaction_id_of(response: bytes) -> str | None:
    """The transaction id of a stored idempotency response (a serialized ``pb.Response``
    of a pay or top-up), or None when it names none. The only code that knows how the
    response is stored."""
    message = pb.Response.FromString(response)
    body = message.WhichOneof("body")
    if body not in ("pay", "topup"):
        return None
    return getattr(message, body).transaction_id or None


_REPLAY_MISMATCHES = (
    "SELECT u.user_id, u.balance, COALESCE(m.net, 0) AS replayed, COUNT(*) OVER () AS total"
    " FROM users AS u LEFT JOIN ("
    "   SELECT user_id, SUM(net) AS net FROM ("
    "     SELECT receiver_id AS user_id, SUM(amount) AS net FROM transactions"
    "     GROUP BY receiver_id"
    "     UNION ALL"
    "     SELECT sender_id, -SUM(amount) FROM transactions WHERE sender_id IS NOT NULL"
    "     GROUP BY sender_id"
    "   ) AS flows GROUP BY user_id"
    " ) AS m ON m.user_id = u.user_id"
    " WHERE u.balance <> COALESCE(m.net, 0)"
    " ORDER BY u.user_id LIMIT %s"
)
"""Users whose balance is not what their transactions add up to (received - sent)."""

_NEGATIVE = (
    "SELECT user_id, balance, COUNT(*) OVER () FROM users WHERE balance < 0"
    " ORDER BY user_id LIMIT %s"
)


class LedgerReader:
    """A read-only connection holding one consistent snapshot of the ledger tables."""

    def __init__(self, dsn: str, connect_timeout: float = 10.0) -> None:
        self.conn = pymysql.connect(
            **parse_dsn(dsn), autocommit=True, connect_timeout=connect_timeout
        )
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT")

    def close(self) -> None:
        try:
            self.conn.rollback()
        finally:
            self.conn.close()

    def _all(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())

    def counts(self) -> tuple[int, int, int]:
        """(users, transactions, idempotency keys)."""
        row = self._all(
            "SELECT (SELECT COUNT(*) FROM users), (SELECT COUNT(*) FROM transactions),"
            " (SELECT COUNT(*) FROM idempotency_keys)"
        )[0]
        return int(row[0]), int(row[1]), int(row[2])

    def totals(self) -> tuple[int, int]:
        """(sum of all balances, sum of all top-ups), in cents."""
        row = self._all(
            "SELECT (SELECT COALESCE(SUM(balance), 0) FROM users),"
            " (SELECT COALESCE(SUM(amount), 0) FROM transactions WHERE kind = 'topup')"
        )[0]
        return int(row[0]), int(row[1])

    def replay_mismatches(self, limit: int) -> Offenders:
        """(user_id, balance, replayed) of users whose balance differs from the replay."""
        return _offenders(self._all(_REPLAY_MISMATCHES, (limit,)))

    def negative_balances(self, limit: int) -> Offenders:
        """(user_id, balance) of users with a balance below zero."""
        return _offenders(self._all(_NEGATIVE, (limit,)))

    def stored_keys(self, page: int = KEY_PAGE) -> Iterator[list[StoredKey]]:
        """Every idempotency key with the transaction id its response names, by pages in
        primary-key order."""
        after: tuple[int, str] | None = None
        while True:
            if after is None:
                rows = self._all(
                    "SELECT user_id, idem_key, response FROM idempotency_keys"
                    " ORDER BY user_id, idem_key LIMIT %s",
                    (page,),
                )
            else:
                rows = self._all(
                    "SELECT user_id, idem_key, response FROM idempotency_keys"
                    " WHERE user_id > %s OR (user_id = %s AND idem_key > %s)"
                    " ORDER BY user_id, idem_key LIMIT %s",
                    (after[0], after[0], after[1], page),
                )
            if not rows:
                return
            yield [StoredKey(int(u), k, transaction_id_of(bytes(r))) for u, k, r in rows]
            after = (int(rows[-1][0]), rows[-1][1])

    def initiators(self, transaction_ids: list[str]) -> dict[str, int]:
        """transaction_id -> the user who made it (the sender; for a top-up, the receiver),
        for those of ``transaction_ids`` that exist."""
        if not transaction_ids:
            return {}
        marks = ",".join(["%s"] * len(transaction_ids))
        rows = self._all(
            "SELECT transaction_id, COALESCE(sender_id, receiver_id) FROM transactions"
            f" WHERE transaction_id IN ({marks})",
            transaction_ids,
        )
        return {tx_id: int(user_id) for tx_id, user_id in rows}


def _offenders(rows: list[tuple[Any, ...]]) -> Offenders:
    """Rows ending with a ``COUNT(*) OVER ()`` column -> their count and the other columns."""
    if not rows:
        return Offenders(0, [])
    return Offenders(int(rows[0][-1]), [tuple(int(v) for v in row[:-1]) for row in rows])
