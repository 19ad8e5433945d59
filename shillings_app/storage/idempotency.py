"""Idempotency keys: the outcome of a payment, top-up or hold operation stored as result
columns (transaction id, resulting balance, status, and the hold it made or changed) in the
transaction that made it, and read back by a retry of the same request. A request that
creates something other than a transaction (a webhook endpoint, WHC) stores that thing's id
in the ``transaction_id`` column, with the caller's balance, unchanged
(``remember_created``). A refusal decided on the data (``AppError.remembered``) is stored
too (``refusal``: its reason and message; ``status``: its code), and a retry gets it again
(``Refused``)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from shillings_app.errors import AppError, IdempotencyKeyReused, Refused
from shillings_app.storage.database import Statement, execute
from shillings_app.storage.records import IdempotencyKey, MoneyResult

STORED = "k.request_hash, k.transaction_id, k.balance, k.status, k.refusal"
"""The SELECT list of a key's earlier use (all NULL when unused), from ``JOINED``."""
NOT_STORED: tuple[None, ...] = (None,) * len(STORED.split(","))
"""``STORED`` of a key never used (or of no key): what ``JOINED`` yields without a row."""
HOLD_STORED = f"{STORED}, k.hold_id"
"""``STORED`` and the hold the earlier use made or changed (the hold commands)."""
REFUSAL_MAX = 512
"""Characters of a stored refusal (the ``refusal`` column)."""
JOINED = (
    " FROM (SELECT 1) AS one LEFT JOIN idempotency_keys AS k ON k.user_id = %s AND k.idem_key = %s"
)
"""A FROM clause yielding one row: the key of (user id, key) if it was used, else NULLs."""


def key_of(idem: IdempotencyKey | None) -> str:
    """The parameter for ``JOINED``'s key (no key: one no row can have)."""
    return idem.key if idem is not None else ""


def same_key(key: str) -> str:
    """What identifies ``key`` as the key column compares it: ``ascii_bin`` pads with spaces,
    so ``"k"`` and ``"k "`` are one key (its row is found, and refused as a duplicate, by
    either spelling)."""
    return key.rstrip(" ")


def replay(idem: IdempotencyKey | None, stored: tuple[Any, ...]) -> MoneyResult | None:
    """The stored outcome (the ``STORED`` or ``HOLD_STORED`` columns) of an earlier use of
    ``idem``; None when it is unused; ``IdempotencyKeyReused`` if that use was another
    request."""
    found = _earlier_use(idem, stored)
    if found is None:
        return None
    transaction_id, balance, status, _, *hold = found
    hold_id = hold[0] if hold else None
    return MoneyResult(transaction_id, int(balance), int(status), replayed=True, hold_id=hold_id)


def replay_current(txn: Any, user_id: int, idem: IdempotencyKey | None) -> MoneyResult | None:
    """``replay`` of the key read current (a locking read), for a request about to be
    refused after its row locks: a retry of it that read before the first use committed
    finds the money reserved, the hold settled or the fifth endpoint made by that use, and
    must answer what that use answered (SPEC: same key, same body, same response)."""
    if idem is None:
        return None
    txn.execute(
        f"SELECT {HOLD_STORED} FROM idempotency_keys AS k"
        " WHERE k.user_id = %s AND k.idem_key = %s LOCK IN SHARE MODE",
        (user_id, idem.key),
    )
    row = txn.fetchone()
    return None if row is None else replay(idem, tuple(row))


def replayed_id(idem: IdempotencyKey | None, stored: tuple[Any, ...]) -> str | None:
    """The id of what an earlier use of ``idem`` created (``remember_created``); None when
    it is unused; ``IdempotencyKeyReused`` if that use was another request."""
    found = _earlier_use(idem, stored)
    return None if found is None else str(found[0])


def _earlier_use(idem: IdempotencyKey | None, stored: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """The ``STORED`` columns after the hash, of an earlier use by the same request (None:
    unused); ``IdempotencyKeyReused`` if it was another request; the ``Refused`` it got."""
    request_hash, *result = stored
    if idem is None or request_hash is None:
        return None
    if bytes(request_hash) != idem.request_hash:
        raise IdempotencyKeyReused()
    _, _, status, refusal, *_ = result
    if refusal is not None:
        raise refused(int(status), refusal)
    return tuple(result)


def refused(status: int, refusal: str) -> Refused:
    """The stored refusal (``MoneyResult.refusal``) as the error to answer again."""
    reason, _, message = refusal.partition(" ")
    return Refused(status, reason, message)


def refusal_result(error: AppError) -> MoneyResult:
    """What a key stores of a refusal (``AppError.remembered``)."""
    refusal = f"{error.reason} {error.message}"[:REFUSAL_MAX]
    return MoneyResult("", 0, error.code, refusal=refusal)


@contextmanager
def remembering_refusals(txn: Any, user_id: int, idem: IdempotencyKey | None) -> Iterator[None]:
    """A refusal raised inside (``AppError.remembered``) is stored under ``idem`` and
    committed (rows locked so far are released), then raised on."""
    try:
        yield
    except AppError as e:
        if idem is not None and e.remembered:
            txn.commit_with([remember_statement([(user_id, idem, refusal_result(e))])])
        raise


def remember(txn: Any, user_id: int, idem: IdempotencyKey | None, result: MoneyResult) -> None:
    """Store ``result`` under ``idem`` (``remember_all`` of one)."""
    if idem is not None:
        remember_all(txn, [(user_id, idem, result)])


def remember_all(txn: Any, entries: Sequence[tuple[int, IdempotencyKey, MoneyResult]]) -> None:
    """Store each (user id, key, result) in one statement; a concurrent duplicate that
    committed first makes this attempt roll back and retry, and the retry replays the
    winner's outcome."""
    execute(txn, remember_statement(entries))


def remember_statement(
    entries: Sequence[tuple[int, IdempotencyKey, MoneyResult]],
) -> Statement | None:
    """The INSERT of ``remember_all`` (None: no keys)."""
    return _insert(
        [
            (user_id, idem, r.transaction_id, r.balance, r.status, r.hold_id, r.refusal)
            for user_id, idem, r in entries
        ]
    )


def remember_created(
    txn: Any, user_id: int, idem: IdempotencyKey | None, created_id: str, balance: int, status: int
) -> None:
    """Store under ``idem`` the id of what the request created and the caller's balance (which
    it did not change), like ``remember``."""
    if idem is not None:
        execute(txn, _insert([(user_id, idem, created_id, balance, status, None, None)]))


def _insert(
    rows: Sequence[tuple[int, IdempotencyKey, str, int, int, str | None, str | None]],
) -> Statement | None:
    """Key rows (user id, key, result id, balance, status, hold id, refusal) in one INSERT; a
    duplicate key retries the transaction."""
    if not rows:
        return None
    marks = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s, UTC_TIMESTAMP(6))"] * len(rows))
    args: list[Any] = []
    for user_id, idem, result_id, balance, status, hold_id, refusal in rows:
        args += [user_id, idem.key, idem.command, idem.request_hash]
        args += [result_id, balance, status, hold_id, refusal]
    return Statement(
        "INSERT INTO idempotency_keys (user_id, idem_key, command, request_hash,"
        f" transaction_id, balance, status, hold_id, refusal, created_at) VALUES {marks}",
        args,
        duplicate_retries=True,
    )
