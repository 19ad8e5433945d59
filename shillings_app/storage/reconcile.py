"""The reads of ``shillings-app reconcile``: set-based queries over one consistent snapshot.

Every query aggregates or joins in MariaDB and returns only totals and the first offenders
with their count, so the cost is a few scans of the tables, not a row per transaction
shipped to Python (pymysql costs microseconds per row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pymysql

from shillings_app.config import parse_dsn
from shillings_app.storage.money import ACTIVE_HOLDS

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
    "SELECT k.user_id, k.idem_key, k.transaction_id, COALESCE(t.sender_id, t.receiver_id),"
    " COUNT(*) OVER ()"
    " FROM idempotency_keys AS k LEFT JOIN transactions AS t"
    " ON t.transaction_id = k.transaction_id"
    " WHERE k.hold_id IS NULL AND k.command <> 'WHC' AND k.refusal IS NULL"
    " AND (t.id IS NULL OR COALESCE(t.sender_id, t.receiver_id) <> k.user_id)"
    " ORDER BY k.user_id, k.idem_key LIMIT %s"
)
"""Keys of payments and top-ups whose transaction is missing or was made by another user
(the maker is the sender, or for a top-up the receiver); the maker is NULL when it is
missing. Keys of webhook registrations (WHC) name an endpoint, not a transaction, and keys
of refusals name nothing: neither is checked."""

_HOLD_KEY_MISMATCHES = (
    "SELECT k.user_id, k.idem_key, k.hold_id, k.transaction_id,"
    " IF(k.command = 'HLD', h.payer_id, h.receiver_id), COUNT(*) OVER ()"
    " FROM idempotency_keys AS k LEFT JOIN holds AS h ON h.hold_id = k.hold_id"
    " LEFT JOIN transactions AS t ON k.command = 'HLC' AND t.transaction_id = k.transaction_id"
    " WHERE k.hold_id IS NOT NULL AND (h.id IS NULL"
    " OR IF(k.command = 'HLD', h.payer_id, h.receiver_id) <> k.user_id"
    " OR (k.command = 'HLC' AND (t.id IS NULL OR t.hold_id <> k.hold_id)))"
    " ORDER BY k.user_id, k.idem_key LIMIT %s"
)
"""Keys of hold commands whose hold is missing or not the key user's (the payer for a
create, the receiver for a capture or void: NULL when the hold is missing), or, for a
capture, whose transaction is not a capture of that hold."""

_NEGATIVE_AVAILABLE = (
    "SELECT u.user_id, u.balance, a.held, COUNT(*) OVER () FROM ("
    "  SELECT h.payer_id, SUM(h.amount) AS held"
    f" FROM {ACTIVE_HOLDS.format(user='h.payer_id')} GROUP BY h.payer_id"
    " ) AS a JOIN users AS u ON u.user_id = a.payer_id WHERE u.balance < a.held"
    " ORDER BY u.user_id LIMIT %s"
)
"""Users whose active holds (``money.ACTIVE_HOLDS``, every payer's at once) reserve more
than their balance: ``available`` < 0 now. It reads the active holds, not every user (a
negative balance without holds is the negative-balance check's)."""

_HOLD_MISMATCHES = (
    "SELECT h.payer_id, h.hold_id, h.state, h.amount, h.captured_amount, COUNT(t.id),"
    " COALESCE(SUM(t.amount), 0), COUNT(*) OVER ()"
    " FROM holds AS h LEFT JOIN transactions AS t ON t.hold_id = h.hold_id AND t.kind = 'capture'"
    " GROUP BY h.id"
    " HAVING h.captured_amount > h.amount"
    " OR (h.state = 'captured' AND (COUNT(t.id) <> 1 OR SUM(t.amount) <> h.captured_amount))"
    " OR (h.state <> 'captured' AND COUNT(t.id) > 0)"
    " ORDER BY h.payer_id, h.id LIMIT %s"
)
"""Holds captured beyond their amount, captured holds without exactly one capture of the
captured amount, and holds with a capture that are not captured (voided or expired)."""

_REFUND_MISMATCHES = (
    "SELECT t.transaction_id, IF(t.refund_of IS NULL, t.receiver_id, t.sender_id), t.amount,"
    " t.refunded_amount, (SELECT COALESCE(SUM(f.amount), 0) FROM transactions AS f"
    " WHERE f.refund_of = t.transaction_id), t.refund_of, o.refunded_amount, COUNT(*) OVER ()"
    " FROM transactions AS t LEFT JOIN transactions AS o"
    " ON o.transaction_id = t.refund_of AND o.kind IN ('payment', 'capture')"
    " AND o.receiver_id = t.sender_id AND o.sender_id = t.receiver_id"
    " WHERE (t.refunded_amount <> 0 AND (t.refunded_amount > t.amount"
    "   OR t.refunded_amount <> (SELECT COALESCE(SUM(f.amount), 0) FROM transactions AS f"
    "   WHERE f.refund_of = t.transaction_id)))"
    " OR (t.refund_of IS NOT NULL AND (o.id IS NULL OR o.refunded_amount = 0))"
    " ORDER BY t.id LIMIT %s"
)
"""Transactions whose ``refunded_amount`` is above their amount or not the sum of the
refunds naming them, and refunds whose original is not a payment or capture of their
parties reversed (``o`` NULL) or counts nothing refunded. One scan of the ledger: only the
rows that count a refund, and the refunds, look anything up (by ``transactions_refund_of``
and ``transactions_public_id``), 4x faster than summing every original's refunds."""


@dataclass(frozen=True)
class Offenders:
    """The first offending rows of a check, ordered by user id, and how many there are."""

    count: int
    rows: list[tuple[Any, ...]]


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
        """(user_id, key, transaction_id, maker or None) of the keys whose transaction is
        missing or not the key user's."""
        rows = self._all(_KEY_MISMATCHES, (limit,))
        return Offenders(
            int(rows[0][-1]) if rows else 0,
            [(int(u), k, tx, None if m is None else int(m)) for u, k, tx, m, _ in rows],
        )

    def refund_mismatches(self, limit: int) -> Offenders:
        """(transaction_id, user_id, amount, refunded_amount, sum of its refunds, refund_of,
        the original's refunded_amount) of each offender; the user is an original's
        receiver, a refund's sender; the last is None when a refund's original is not one."""
        rows = self._all(_REFUND_MISMATCHES, (limit,))
        return Offenders(
            int(rows[0][-1]) if rows else 0,
            [
                (tx, int(u), int(a), int(r), int(s), of, None if o is None else int(o))
                for tx, u, a, r, s, of, o, _ in rows
            ],
        )

    def hold_key_mismatches(self, limit: int) -> Offenders:
        """(user_id, key, hold_id, transaction_id, party or None) of the hold commands' keys
        whose hold is missing or not the key user's, or whose capture is not of it."""
        rows = self._all(_HOLD_KEY_MISMATCHES, (limit,))
        return Offenders(
            int(rows[0][-1]) if rows else 0,
            [(int(u), k, h, tx, None if p is None else int(p)) for u, k, h, tx, p, _ in rows],
        )

    def negative_available(self, limit: int) -> Offenders:
        """(user_id, balance, held) of users whose holds reserve more than their balance."""
        return _offenders(self._all(_NEGATIVE_AVAILABLE, (limit,)), ints=3)

    def hold_mismatches(self, limit: int) -> Offenders:
        """(payer_id, hold_id, state, amount, captured, captures, captured by them) of holds
        whose captures disagree with them."""
        rows = self._all(_HOLD_MISMATCHES, (limit,))
        return Offenders(
            int(rows[0][-1]) if rows else 0,
            [(int(p), h, st, int(a), int(c), int(n), int(s)) for p, h, st, a, c, n, s, _ in rows],
        )


def _offenders(rows: list[tuple[Any, ...]], ints: int) -> Offenders:
    """Rows of ``ints`` integer columns then a ``COUNT(*) OVER ()`` one."""
    if not rows:
        return Offenders(0, [])
    return Offenders(int(rows[0][-1]), [tuple(int(v) for v in row[:ints]) for row in rows])
