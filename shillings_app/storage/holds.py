"""The statements of holds (SPEC §6). The rules that choose among them live in the
operations' transaction functions (``handlers/hold_*.py``, ``holdsweep.py``).

Lock order, as for payments: the users' rows first (``money.lock_users``, ascending ids),
then the hold's row. A hold is active while ``state = 'held'`` and ``expires_at`` is ahead
on the database's clock (``money.ACTIVE_HOLDS``), whether or not the sweep has marked it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shillings_app.errors import HoldNotActive, HoldNotFound, Unauthenticated
from shillings_app.storage import idempotency
from shillings_app.storage.auth import REVOKED, authenticate, authenticated
from shillings_app.storage.idempotency import HOLD_STORED, JOINED
from shillings_app.storage.money import Locked, lock_users, now
from shillings_app.storage.records import IdempotencyKey, MoneyResult

CREATE_LOOKUP = (
    f"SELECT {REVOKED}, (SELECT user_id FROM users WHERE email = %s), {HOLD_STORED}{JOINED}"
)
"""What a new hold checks before locking, in one round trip: is the token revoked, who is
the receiver, the key's earlier use. Parameters: token id, receiver email, payer id, key."""

CHANGE_LOOKUP = (
    f"SELECT {REVOKED}, (SELECT payer_id FROM holds WHERE hold_id = %s AND receiver_id = %s),"
    f" {HOLD_STORED}{JOINED}"
)
"""The same for a capture or void: the hold's payer if the caller is its receiver (NULL
otherwise). Parameters: token id, hold id, receiver id, receiver id, key."""

EFFECTIVE_STATE = "IF(h.state = 'held' AND h.expires_at <= UTC_TIMESTAMP(6), 'expired', h.state)"
"""A hold's state as the API shows it: an expired hold the sweep has not marked yet is
``expired`` already."""

_COLUMNS = (
    "h.id, h.hold_id, h.payer_id, h.payer_email, h.receiver_id, h.receiver_email, h.amount,"
    f" h.captured_amount, {EFFECTIVE_STATE}, h.expires_at, h.created_at, h.updated_at,"
    " h.capture_transaction_id"
)


@dataclass(frozen=True)
class HoldRecord:
    """A row of ``holds`` (``state`` as ``EFFECTIVE_STATE`` reads it)."""

    id: int
    hold_id: str
    payer_id: int
    payer_email: str
    receiver_id: int
    receiver_email: str
    amount: int
    captured_amount: int
    state: str
    expires_at: datetime
    created_at: datetime
    updated_at: datetime
    capture_transaction_id: str | None = None
    """The capture's ledger row, once captured (migration 0007)."""


def _record(row: tuple[Any, ...]) -> HoldRecord:
    return HoldRecord(
        int(row[0]), row[1], int(row[2]), row[3], int(row[4]), row[5], int(row[6]),
        int(row[7]), row[8], row[9], row[10], row[11], row[12],
    )  # fmt: skip


def insert_hold(
    txn: Any,
    payer: tuple[int, str],
    receiver: tuple[int, str],
    amount: int,
    expires_in: int,
    at: datetime,
) -> HoldRecord:
    """A new hold made at ``at``, expiring ``expires_in`` seconds later."""
    hold_id = str(uuid.uuid4())
    expires_at = at + timedelta(seconds=expires_in)
    txn.execute(
        "INSERT INTO holds (hold_id, payer_id, payer_email, receiver_id, receiver_email,"
        " amount, expires_at, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (hold_id, payer[0], payer[1], receiver[0], receiver[1], amount, expires_at, at, at),
    )
    return HoldRecord(
        txn.lastrowid, hold_id, payer[0], payer[1], receiver[0], receiver[1], amount, 0,
        "held", expires_at, at, at,
    )  # fmt: skip


def hold_by_id(txn: Any, hold_id: str) -> HoldRecord:
    """The hold, for a replay of the request that made or changed it: read current (a
    shared lock), since that request may have committed after this transaction's snapshot
    (``idempotency.replay_current``)."""
    txn.execute(
        f"SELECT {_COLUMNS} FROM holds AS h WHERE h.hold_id = %s LOCK IN SHARE MODE", (hold_id,)
    )
    return _record(txn.fetchone())


def lock_hold(txn: Any, hold_id: str) -> HoldRecord | None:
    """Lock the hold's row (after its users' rows) and return it; ``state`` is ``held``
    only while it is active on the database's clock."""
    txn.execute(f"SELECT {_COLUMNS} FROM holds AS h WHERE h.hold_id = %s FOR UPDATE", (hold_id,))
    row = txn.fetchone()
    return None if row is None else _record(row)


@dataclass(frozen=True)
class Change:
    """An active hold locked for its receiver to capture or void, with both users' rows,
    and the instant of the change (taken under the locks; the hold is active at it)."""

    hold: HoldRecord
    payer: Locked
    receiver: Locked
    at: datetime


def begin_change(
    txn: Any, receiver_id: int, token_id: str, hold_id: str, idem: IdempotencyKey | None
) -> Change | MoneyResult:
    """The first steps of a capture or void: the lookup (token, the hold's payer if the
    caller is its receiver, key), then both users' rows and the hold's locked in that order.
    The replayed outcome of the key's earlier use, if any; ``HoldNotFound`` unless the
    caller is the hold's receiver; ``HoldNotActive`` unless it is held and unexpired."""
    txn.execute(
        CHANGE_LOOKUP, (token_id, hold_id, receiver_id, receiver_id, idempotency.key_of(idem))
    )
    revoked, payer_id, *stored = txn.fetchone()
    authenticated(True, revoked)
    replayed = idempotency.replay(idem, tuple(stored))
    if replayed is not None:
        return replayed
    if payer_id is None:
        raise HoldNotFound()
    locked = lock_users(txn, int(payer_id), receiver_id)
    if receiver_id not in locked:
        raise Unauthenticated()
    hold = lock_hold(txn, hold_id)
    if hold is None or hold.receiver_id != receiver_id:
        raise HoldNotFound()
    if hold.state != "held":
        return _settled_by_this_key(txn, receiver_id, idem)
    # ``state`` was read on the database's clock as the statement began; the change is
    # stamped at ``at``, later, which must be before the expiry too: else a capture
    # checked in time would be recorded after the hold expired.
    at = now()
    if hold.expires_at <= at:
        raise HoldNotActive()
    return Change(hold, locked[hold.payer_id], locked[receiver_id], at)


def _settled_by_this_key(txn: Any, receiver_id: int, idem: IdempotencyKey | None) -> MoneyResult:
    """The outcome of the capture or void that settled the hold if it was this request's
    own key (a retry racing its first attempt); else ``HoldNotActive``."""
    replayed = idempotency.replay_current(txn, receiver_id, idem)
    if replayed is None:
        raise HoldNotActive()
    return replayed


def settle(
    txn: Any,
    hold: HoldRecord,
    state: str,
    at: datetime,
    captured: int = 0,
    capture_transaction_id: str | None = None,
) -> HoldRecord:
    """Move a locked active hold to ``state`` (captured, by the ledger row
    ``capture_transaction_id``, or voided); the hold after it."""
    txn.execute(
        "UPDATE holds SET state = %s, captured_amount = %s, capture_transaction_id = %s,"
        " updated_at = %s WHERE id = %s",
        (state, captured, capture_transaction_id, at, hold.id),
    )
    return replace(mark(hold, state, at, captured), capture_transaction_id=capture_transaction_id)


def mark(hold: HoldRecord, state: str, at: datetime, captured: int = 0) -> HoldRecord:
    """The hold as it is after moving to ``state`` at ``at``."""
    return replace(hold, state=state, captured_amount=captured, updated_at=at)


_STATE_FILTER = {
    "": "",
    "held": f" AND {EFFECTIVE_STATE} = 'held'",
    "captured": " AND h.state = 'captured'",
    "voided": " AND h.state = 'voided'",
    "expired": f" AND {EFFECTIVE_STATE} = 'expired'",
}
"""The list's ``state`` filter, by state (the keys are the valid values)."""
STATES = frozenset(_STATE_FILTER) - {""}
ROLES = {"payer": ("payer_id",), "receiver": ("receiver_id",), "": ("payer_id", "receiver_id")}
"""The list's ``role`` filter: the column(s) naming the caller."""


def holds_txn(
    txn: Any,
    user_id: int,
    token_id: str,
    role: str,
    state: str,
    limit: int,
    before_id: int | None,
) -> list[HoldRecord]:
    """Up to ``limit`` of the user's holds (as payer, receiver or either) in ``state`` (any
    when ""), with id < ``before_id`` (all when None), newest first. Each branch walks its
    ``(payer_id, id)`` / ``(receiver_id, id)`` index."""
    authenticate(txn, user_id, token_id)
    upper = before_id if before_id is not None else 2**63
    where = _STATE_FILTER[state]
    branches = [
        f"(SELECT {_COLUMNS} FROM holds AS h WHERE h.{column} = %s AND h.id < %s{where}"
        " ORDER BY h.id DESC LIMIT %s)"
        for column in ROLES[role]
    ]
    args: list[Any] = []
    for _ in branches:
        args += [user_id, upper, limit]
    txn.execute(" UNION ".join(branches) + " ORDER BY 1 DESC LIMIT %s", (*args, limit))
    return [_record(row) for row in txn.fetchall()]


def expired_candidates(txn: Any, batch: int) -> list[tuple[int, int, int]]:
    """(id, payer id, receiver id) of up to ``batch`` holds past their expiry not yet
    marked, read without locks (the sweep locks their users first, then re-reads them)."""
    txn.execute(
        "SELECT id, payer_id, receiver_id FROM holds"
        " WHERE state = 'held' AND expires_at <= UTC_TIMESTAMP(6) ORDER BY expires_at LIMIT %s",
        (batch,),
    )
    return [(int(a), int(b), int(c)) for a, b, c in txn.fetchall()]


def lock_expired(txn: Any, ids: list[int]) -> list[HoldRecord]:
    """Lock those of the holds ``ids`` still held and past their expiry (another sweep may
    have marked some meanwhile)."""
    marks = ", ".join(["%s"] * len(ids))
    txn.execute(
        f"SELECT {_COLUMNS} FROM holds AS h WHERE h.id IN ({marks}) AND h.state = 'held'"
        " AND h.expires_at <= UTC_TIMESTAMP(6) ORDER BY h.id FOR UPDATE",
        ids,
    )
    return [_record(row) for row in txn.fetchall()]


def mark_expired(txn: Any, ids: list[int], at: datetime) -> None:
    marks = ", ".join(["%s"] * len(ids))
    txn.execute(
        f"UPDATE holds SET state = 'expired', updated_at = %s WHERE id IN ({marks})",
        (at, *ids),
    )
