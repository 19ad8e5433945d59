"""The statements of payments and top-ups (SPEC §4). The rules that choose among them live
in the operations' transaction functions (``handlers/pay.py``, ``handlers/topup.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shillings_app.storage import events
from shillings_app.storage.auth import REVOKED
from shillings_app.storage.database import Statement, execute
from shillings_app.storage.idempotency import JOINED, NOT_STORED, STORED, same_key

TOPUP_LOOKUP = f"SELECT {REVOKED}, {STORED}{JOINED}"
"""A top-up's checks for one request, as its own statement (webhook registration): is the
token revoked, and its key's earlier use (``idempotency.STORED``, or NULLs). Parameters:
token id, user id, key."""

RECEIVER_ID = "SELECT CAST(user_id AS SIGNED) FROM users WHERE email = %s"
"""A receiver's id by email, for a session variable of ``lock_and_lookup``. Signed, like the
integer literals beside it in the lock's ``IN (…)``: a list mixing them with unsigned
values (the BIGINT UNSIGNED column read as is) is compared as DECIMAL, and the lock
statement of a batch of 10 payments took 4.1 ms of MariaDB's time instead of 0.9
(docs/ARCHITECTURE.md, "Round trips"). User ids stay far below 2^63."""


@dataclass(frozen=True)
class Check:
    """What ``lock_and_lookup`` looks up for one request: its token and its key (``""``:
    none, ``idempotency.key_of``) of its user."""

    token_id: str
    user_id: int
    key: str


def lock_and_lookup(
    txn: Any,
    user_ids: Sequence[int],
    checks: Sequence[Check],
    receivers: Sequence[str] = (),
    *,
    held: bool = True,
) -> tuple[dict[int, Locked], frozenset[int], list[tuple[Any, ...]]]:
    """``lock_users`` of ``user_ids`` and of the users whose emails are ``receivers``, then the
    lookup, in one round trip. Without ``held`` (a batch that spends nothing: top-ups) the
    lock reads no holds (``Locked.read_held`` None): their sum was a third of the lock statement's
    cost (6 users: 0.29 ms of MariaDB round trip, 0.19 without). Returns the locked rows,
    those of them with an enabled webhook endpoint (``events.hooked_statement``) and, for
    each of ``checks`` in order, ``(revoked, *stored)`` (``idempotency.STORED``, or
    ``idempotency.NOT_STORED``), with ``receivers`` (one per check) ``(revoked, receiver id
    or None, *stored)``.

    The receivers' ids are read first (``SET`` of one session variable each; an email never
    changes while the app runs) so that every row is locked by the one ascending-id
    statement; a receiver's id is then the locked row of that email. The lookup is two
    statements for the whole batch, whatever its size: the revoked tokens among the
    batch's, and the keys used before among its keys (none when no request has one); a
    ``UNION ALL`` of one row per request cost MariaDB ~3 times as much (a batch of 8 top-ups:
    0.58 to 0.79 ms against 0.17 to 0.25). Its snapshot is taken after the row locks were granted
    (MariaDB 10.11 opens no read view for the ``SET``), so a duplicate that waited on them
    finds its twin's key; were it older, the key's unique index would still catch the twin
    (retry)."""
    found = [f"@shillings_receiver_{n}" for n in range(len(receivers))]
    statements = [
        _lock(user_ids, found, held=held),
        events.hooked_statement(user_ids, found),
        _revoked(checks),
    ]
    keyed = [check for check in checks if check.key]
    if keyed:
        statements.append(_stored(keyed))
    if receivers:
        marks = ", ".join(f"{v} = ({RECEIVER_ID})" for v in found)
        statements.insert(0, Statement(f"SET {marks}", receivers))
    results = txn.results(statements)[1 if receivers else 0 :]
    locked = _locked(results[0])
    hooked = frozenset(int(row[0]) for row in results[1])
    revoked = {row[0] for row in results[2]}
    stored = {
        (int(row[0]), same_key(row[1])): tuple(row[2:]) for row in (results[3] if keyed else ())
    }
    ids = {row.email: user_id for user_id, row in locked.items()}
    looked = []
    for n, check in enumerate(checks):
        receiver = (ids.get(receivers[n]),) if receivers else ()
        earlier = stored.get((check.user_id, same_key(check.key)), NOT_STORED)
        looked.append((check.token_id in revoked, *receiver, *earlier))
    return locked, hooked, looked


def _revoked(checks: Sequence[Check]) -> Statement:
    marks = ", ".join(["%s"] * len(checks))
    return Statement(
        f"SELECT jti FROM revoked_tokens WHERE jti IN ({marks})", [c.token_id for c in checks]
    )


def _stored(keyed: Sequence[Check]) -> Statement:
    """The earlier uses of these keys: user id, key and ``idempotency.STORED``."""
    marks = ", ".join(["(%s, %s)"] * len(keyed))
    return Statement(
        f"SELECT k.user_id, k.idem_key, {STORED} FROM idempotency_keys AS k"
        f" WHERE (k.user_id, k.idem_key) IN ({marks})",
        [value for check in keyed for value in (check.user_id, check.key)],
    )


ACTIVE_RULE = "h.payer_id = {user} AND h.state = 'held' AND h.expires_at > UTC_TIMESTAMP(6)"
ACTIVE_HOLDS = f"holds AS h WHERE {ACTIVE_RULE}"
"""The held rule (SPEC §6), as a FROM … WHERE clause: a user's holds as payer in state
'held' whose expiry is still ahead on the database's clock, so an expired hold stops
counting at ``expires_at`` before the sweep marks it. ``{user}`` is the SQL expression of
the user id."""

ACTIVE_HELD = f"(SELECT COALESCE(SUM(h.amount), 0) FROM {ACTIVE_HOLDS})"
"""SQL of a user's ``held``: the sum of their active holds (``ACTIVE_HOLDS``)."""

CURRENT_HELD = (
    "(SELECT COALESCE(SUM(h.amount), 0) FROM holds AS h FORCE INDEX (holds_payer_active)"
    f" WHERE {ACTIVE_RULE} LOCK IN SHARE MODE)"
)
"""``ACTIVE_HELD`` read current, for ``lock_users``: a plain subquery is a consistent read
from the transaction's snapshot (taken by its first read, before the row lock was
granted), which misses holds committed meanwhile and would let two holds (or a hold and a
payment) spend the same ``available``. The index is forced: left to itself the optimizer
scanned the holds' primary key, share-locking every hold, and hold creations deadlocked on
those locks (42 of 1,134 bench holds answered 503)."""

NEXT_HOLD_EXPIRY = f"(SELECT MIN(h.expires_at) FROM {ACTIVE_HOLDS})"
"""SQL of when the user's ``held`` next shrinks by itself: the earliest expiry of their
active holds (NULL: none)."""


@dataclass(frozen=True)
class Locked:
    """A user's row as locked: balance, email and what their active holds reserve."""

    balance: int
    email: str
    read_held: int | None
    """What their active holds reserve; None: not read (``lock_and_lookup`` without
    ``held``)."""

    @property
    def held(self) -> int:
        """``read_held``, refused when the holds were not read (a spend never judged on
        them by mistake)."""
        if self.read_held is None:
            raise RuntimeError("the user's holds were not read under the lock")
        return self.read_held

    @property
    def available(self) -> int:
        return self.balance - self.held


def lock_users(txn: Any, *user_ids: int) -> dict[int, Locked]:
    """Lock the users' rows in one statement and return user id -> ``Locked`` for those
    that exist. InnoDB walks the primary key upwards, so the rows are locked in ascending
    user id order and opposite payments cannot deadlock. Holds are only created and
    released under their payer's row lock, so ``held`` (read current: ``CURRENT_HELD``)
    cannot change until COMMIT."""
    execute(txn, _lock(user_ids))
    return _locked(txn.fetchall())


def _lock(user_ids: Sequence[int], found: Sequence[str] = (), *, held: bool = True) -> Statement:
    """``lock_users``' statement; ``found``: SQL variables holding more ids (NULL: none);
    without ``held`` it reads NULL for ``held``."""
    marks = ", ".join([*(["%s"] * len(user_ids)), *found])
    held_sql = CURRENT_HELD.format(user="users.user_id") if held else "NULL"
    return Statement(
        f"SELECT user_id, balance, email, {held_sql}"
        f" FROM users WHERE user_id IN ({marks}) ORDER BY user_id FOR UPDATE",
        user_ids,
    )


def _locked(rows: Sequence[Sequence[Any]]) -> dict[int, Locked]:
    return {int(r[0]): Locked(int(r[1]), r[2], None if r[3] is None else int(r[3])) for r in rows}


def balances_statement(deltas: Mapping[int, int]) -> Statement | None:
    """Add each user's delta (cents, signed) to their balance, all in one UPDATE (None: no
    change)."""
    if not deltas:
        return None
    cases = " ".join(["WHEN %s THEN %s"] * len(deltas))
    marks = ", ".join(["%s"] * len(deltas))
    return Statement(
        f"UPDATE users SET balance = balance + CASE user_id {cases} END,"
        f" updated_at = UTC_TIMESTAMP(6) WHERE user_id IN ({marks})",
        [*(value for pair in deltas.items() for value in pair), *deltas],
    )


@dataclass(frozen=True)
class LedgerRow:
    """A ledger row to insert (``sender`` None for a top-up), made at ``at``."""

    kind: str
    sender: tuple[int, str] | None
    receiver: tuple[int, str]
    amount: int
    at: datetime
    hold_id: str | None = None
    refund_of: str | None = None
    transaction_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def ledger_statement(rows: Sequence[LedgerRow]) -> Statement | None:
    """Ledger rows in one INSERT, in the order given, so their ids follow it (None: no
    rows)."""
    if not rows:
        return None
    marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    args: list[Any] = []
    for row in rows:
        sender = row.sender
        args += [
            row.transaction_id,
            row.kind,
            sender[0] if sender else None,
            sender[1] if sender else None,
            row.receiver[0],
            row.receiver[1],
            row.amount,
            row.at,
            row.hold_id,
            row.refund_of,
        ]
    return Statement(
        "INSERT INTO transactions (transaction_id, kind, sender_id, sender_email,"
        f" receiver_id, receiver_email, amount, created_at, hold_id, refund_of) VALUES {marks}",
        args,
    )


def now() -> datetime:
    """The time a change is made, naive UTC with microseconds as the DATETIME(6) columns
    hold it: the ledger row and its events carry the same instant."""
    return datetime.now(UTC).replace(tzinfo=None)
