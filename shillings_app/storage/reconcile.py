"""The reads of ``shillings-app reconcile``: set-based queries over one consistent snapshot.

Every query aggregates or joins in MariaDB and returns only totals and the first offenders
with their count, so the cost is a few scans of the tables, not a row per transaction
shipped to Python (pymysql costs microseconds per row).

The transaction id of an idempotency key lives inside its stored response, a serialized
``pb.Response``. ``transaction_id_of`` (protobuf) is the authority on it;
``TRANSACTION_ID_SQL`` reads the same id in SQL from a response of exactly the shape the
app server writes, and yields NULL for any other shape, whose keys are then read here and
parsed by ``transaction_id_of``. Both go when keys store their transaction id in a column.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
from google.protobuf.message import DecodeError

from shillings_app.config import parse_dsn
from shillings_proto import pb

KEY_PAGE = 5000
"""Idempotency keys read per round trip when they must be parsed here."""


def transaction_id_of(response: bytes) -> str | None:
    """The transaction id of a stored idempotency response (a serialized ``pb.Response``
    of a pay or top-up); None when it names none or cannot be parsed."""
    try:
        message = pb.Response.FromString(response)
    except DecodeError:
        return None
    body = message.WhichOneof("body")
    if body not in ("pay", "topup"):
        return None
    return getattr(message, body).transaction_id or None


_S = "ASCII(SUBSTRING(response, 2, 1))"
TRANSACTION_ID_SQL = (
    "CASE WHEN ASCII(response) = 26"  # field 3 (status), length-delimited, comes first
    f" AND {_S} < 128"  # its length fits in one byte
    f" AND ASCII(SUBSTRING(response, 3 + {_S}, 1)) IN (106, 114)"  # then field 13 or 14
    f" AND LENGTH(response) = 4 + {_S} + ASCII(SUBSTRING(response, 4 + {_S}, 1))"  # to the end
    f" AND SUBSTRING(response, 5 + {_S}, 2) = X'0A24'"  # whose field 1 is 36 bytes long
    f" AND LOCATE(X'0A', response, 43 + {_S}) = 0"  # and no byte after it could repeat it
    f" THEN CAST(SUBSTRING(response, 7 + {_S}, 36) AS CHAR(36) CHARACTER SET ascii) END"
)
"""The transaction id of a response shaped ``status, pay|topup{transaction_id (36
bytes), …}`` and nothing else, as the app server writes it; NULL for any other shape (the
byte checks reject everything ``transaction_id_of`` could read differently)."""

_REPLAY_MISMATCHES = (
    "SELECT u.user_id, u.balance, COALESCE(m.net, 0), COUNT(*) OVER ()"
    " FROM users AS u LEFT JOIN ("
    "   SELECT user_id, SUM(net) AS net FROM ("
    "     SELECT receiver_id AS user_id, SUM(amount) AS net"
    "     FROM transactions IGNORE INDEX (transactions_receiver) GROUP BY receiver_id"
    "     UNION ALL"
    "     SELECT sender_id, -SUM(amount) FROM transactions IGNORE INDEX (transactions_sender)"
    "     WHERE sender_id IS NOT NULL GROUP BY sender_id"
    "   ) AS flows GROUP BY user_id"
    " ) AS m ON m.user_id = u.user_id"
    " WHERE u.balance <> COALESCE(m.net, 0)"
    " ORDER BY u.user_id LIMIT %s"
)
"""Users whose balance is not what their transactions add up to (received - sent). The
index hints make each GROUP BY one sequential scan instead of a walk of the per-user index
with a row lookup per transaction (3x slower on a million rows)."""

_NEGATIVE = (
    "SELECT user_id, balance, COUNT(*) OVER () FROM users WHERE balance < 0"
    " ORDER BY user_id LIMIT %s"
)

_KEY_MISMATCHES = (
    "SELECT k.user_id, k.idem_key, k.tx, COALESCE(t.sender_id, t.receiver_id), COUNT(*) OVER ()"
    f" FROM (SELECT user_id, idem_key, {TRANSACTION_ID_SQL} AS tx FROM idempotency_keys) AS k"
    " LEFT JOIN transactions AS t ON t.transaction_id = k.tx"
    " WHERE k.tx IS NOT NULL"
    "  AND (t.id IS NULL OR COALESCE(t.sender_id, t.receiver_id) <> k.user_id)"
    " ORDER BY k.user_id, k.idem_key LIMIT %s"
)
"""Keys (read in SQL) whose transaction is missing or was made by another user (the maker
is the sender, or for a top-up the receiver); the maker is NULL when it is missing."""


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


class LedgerReader:
    """A connection holding one consistent snapshot of the ledger tables; it writes nothing."""

    def __init__(self, dsn: str, connect_timeout: float = 10.0) -> None:
        self.conn = pymysql.connect(
            **parse_dsn(dsn), autocommit=True, connect_timeout=connect_timeout
        )
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            # Batched key access: the key check's index lookups sorted by key, not random.
            cur.execute(
                "SET SESSION join_cache_level = 6, join_buffer_size = 64 * 1024 * 1024,"
                " optimizer_switch = 'mrr=on,mrr_sort_keys=on,join_cache_bka=on'"
            )
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
        return _offenders(self._all(_REPLAY_MISMATCHES, (limit,)), ints=3)

    def negative_balances(self, limit: int) -> Offenders:
        """(user_id, balance) of users with a balance below zero."""
        return _offenders(self._all(_NEGATIVE, (limit,)), ints=2)

    def key_mismatches(self, limit: int) -> Offenders:
        """(user_id, key, transaction_id, maker or None) of the keys whose id SQL reads and
        whose transaction is missing or not the key user's."""
        rows = self._all(_KEY_MISMATCHES, (limit,))
        return Offenders(
            int(rows[0][-1]) if rows else 0,
            [(int(u), k, tx, None if m is None else int(m)) for u, k, tx, m, _ in rows],
        )

    def unread_keys(self, page: int = KEY_PAGE) -> Iterator[list[StoredKey]]:
        """The keys whose response SQL cannot read, parsed by ``transaction_id_of``, by
        pages in primary-key order (none while every response has the app server's shape)."""
        after = (-1, "")
        while True:
            rows = self._all(
                "SELECT user_id, idem_key, response FROM idempotency_keys"
                " WHERE (user_id > %s OR (user_id = %s AND idem_key > %s))"
                f" AND ({TRANSACTION_ID_SQL}) IS NULL"
                " ORDER BY user_id, idem_key LIMIT %s",
                (after[0], after[0], after[1], page),
            )
            if not rows:
                return
            yield [StoredKey(int(u), k, transaction_id_of(bytes(r))) for u, k, r in rows]
            after = (int(rows[-1][0]), rows[-1][1])

    def makers(self, transaction_ids: list[str]) -> dict[str, int]:
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


def _offenders(rows: list[tuple[Any, ...]], ints: int) -> Offenders:
    """Rows of ``ints`` integer columns then a ``COUNT(*) OVER ()`` one."""
    if not rows:
        return Offenders(0, [])
    return Offenders(int(rows[0][-1]), [tuple(int(v) for v in row[:ints]) for row in rows])
