"""The checks of the holds-and-refunds storm (scenario 17), read from the stack's MariaDB.

- ``check_holds``: a hold is captured at most once, never after it was voided or expired:
  a capture row names an existing hold, is the only capture of it, moves its
  ``captured_amount`` (≤ its amount) from its payer to its receiver, and is stamped at or
  before its ``expires_at``; a hold in state ``captured`` has exactly that one row, any
  other hold none; a void is stamped before expiry, an expiry at or after it.
- ``check_refunds``: the refunds of one payment or capture sum to at most its amount and
  exactly to its ``refunded_amount``, each from its receiver back to its sender; nothing
  else is refunded.
- ``replay_available``: see its docstring.
- ``check_ops``: what clients were told against the rows (see its docstring).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tests.reliability.holds_ops import Op
from tests.reliability.stack import Stack

KINDS = {"pay": "payment", "topup": "topup", "capture": "capture", "refund": "refund"}
"""The ``transactions.kind`` of the row each kind of op makes."""


@dataclass(frozen=True)
class Tx:
    id: int
    transaction_id: str
    kind: str
    sender_id: int | None
    receiver_id: int
    amount: int
    created_at: float
    hold_id: str | None
    refund_of: str | None
    refunded_amount: int


@dataclass(frozen=True)
class Hold:
    hold_id: str
    payer_id: int
    receiver_id: int
    amount: int
    captured_amount: int
    state: str
    expires_at: float
    created_at: float
    updated_at: float


@dataclass
class Rows:
    """The ledger as stored: transactions in id order, holds by hold_id, keys."""

    txs: list[Tx]
    holds: dict[str, Hold]
    keys: dict[tuple[int, str], tuple[str | None, str | None]]  # -> (transaction, hold)
    """A key naming only a hold (its creation or void) stores transaction_id '': None here."""
    balances: dict[int, int]
    now: float  # MariaDB's UTC_TIMESTAMP(6) when read


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def _plain(value: Any) -> Any:
    """A column as the checks use it: DATETIME as epoch seconds, numbers as int."""
    if isinstance(value, datetime):
        return _epoch(value)
    return int(value) if isinstance(value, int | Decimal) else value


def load(stack: Stack) -> Rows:
    """Every row of the ledger tables, in one consistent snapshot."""
    conn = stack.db()
    try:
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            cur.execute("SELECT UTC_TIMESTAMP(6)")
            now = _epoch(cur.fetchone()[0])
            cur.execute(
                "SELECT id, transaction_id, kind, sender_id, receiver_id, amount, created_at,"
                " hold_id, refund_of, refunded_amount FROM transactions ORDER BY id"
            )
            txs = [Tx(*map(_plain, r)) for r in cur.fetchall()]
            cur.execute(
                "SELECT hold_id, payer_id, receiver_id, amount, captured_amount, state,"
                " expires_at, created_at, updated_at FROM holds"
            )
            holds = {r[0]: Hold(*map(_plain, r)) for r in cur.fetchall()}
            cur.execute("SELECT user_id, idem_key, transaction_id, hold_id FROM idempotency_keys")
            keys = {(int(r[0]), r[1]): (r[2] or None, r[3]) for r in cur.fetchall()}
            cur.execute("SELECT user_id, balance FROM users")
            balances = {int(r[0]): int(r[1]) for r in cur.fetchall()}
            conn.rollback()
    finally:
        conn.close()
    return Rows(txs, holds, keys, balances, now)


def check_holds(rows: Rows) -> list[str]:
    problems = []
    captures: dict[str, list[Tx]] = defaultdict(list)
    for tx in rows.txs:
        if tx.kind == "capture":
            captures[str(tx.hold_id)].append(tx)
        elif tx.hold_id is not None:
            problems.append(f"{tx.kind} {tx.transaction_id} names hold {tx.hold_id}")
    for hold_id, txs in captures.items():
        hold = rows.holds.get(hold_id)
        if hold is None:
            problems.append(f"capture {txs[0].transaction_id} of a hold that does not exist")
            continue
        if len(txs) > 1:
            problems.append(f"hold {hold_id} captured {len(txs)} times")
        for tx in txs:
            if (tx.sender_id, tx.receiver_id) != (hold.payer_id, hold.receiver_id):
                problems.append(f"capture {tx.transaction_id} between other parties than {hold}")
            if tx.amount != hold.captured_amount or tx.amount > hold.amount:
                problems.append(f"capture {tx.transaction_id} of {tx.amount} for {hold}")
            if tx.created_at > hold.expires_at:
                problems.append(f"capture {tx.transaction_id} after its hold expired: {hold}")
    for hold in rows.holds.values():
        made = len(captures.get(hold.hold_id, []))
        if (hold.state == "captured") != (made > 0):
            problems.append(f"hold in state {hold.state} with {made} capture row(s): {hold}")
        if hold.state == "voided" and hold.updated_at > hold.expires_at:
            problems.append(f"hold voided after it expired: {hold}")
        if hold.state == "expired" and hold.updated_at < hold.expires_at:
            problems.append(f"hold marked expired before its expiry: {hold}")
    return problems


def check_refunds(rows: Rows) -> list[str]:
    problems = []
    by_id = {tx.transaction_id: tx for tx in rows.txs}
    refunded: dict[str, int] = defaultdict(int)
    for tx in rows.txs:
        if tx.kind != "refund":
            continue
        original = by_id.get(str(tx.refund_of))
        if original is None or original.kind not in ("payment", "capture"):
            problems.append(f"refund {tx.transaction_id} of {original or tx.refund_of}")
            continue
        if (tx.sender_id, tx.receiver_id) != (original.receiver_id, original.sender_id):
            problems.append(f"refund {tx.transaction_id} not back along {original}")
        refunded[original.transaction_id] += tx.amount
    for tx in rows.txs:
        total = refunded.get(tx.transaction_id, 0)
        if total > tx.amount:
            problems.append(f"{tx.transaction_id} of {tx.amount} refunded {total} in total")
        if total != tx.refunded_amount:
            problems.append(
                f"{tx.transaction_id}: refunded_amount {tx.refunded_amount}, rows {total}"
            )
    return problems


Event = tuple[float, int, int, int, int, str]
"""(time, rank, user, balance change, held change, what): rank 0 releases a hold, 1 is a row."""


def replay_available(rows: Rows) -> tuple[list[str], dict[int, int]]:
    """Replay each user's history and check ``available`` = balance - held never dips below 0.

    The events, per user: every transactions row at its ``created_at`` (sent: balance down,
    received: up); a hold reserves its amount (held up) at its ``created_at`` and releases
    it at its capture row's ``created_at`` (in the same event as the capture's debit), at
    its ``updated_at`` when voided, or at its ``expires_at`` when expired or still 'held'
    past it. Every change stamps its time while its payer's row is locked and holds are
    only made and released under that lock, so a user's events are totally ordered by
    those stamps; two stamped in the same microsecond replay releases first, then by row id.
    An expiry does not lock anything: it is applied exactly at ``expires_at``, as the API
    counts it. Returns the problems and each user's lowest ``available``; the final
    balances must also equal the stored ones.
    """
    events: list[Event] = []
    for tx in rows.txs:
        if tx.sender_id is not None:
            held = 0
            if tx.kind == "capture" and str(tx.hold_id) in rows.holds:
                held = -rows.holds[str(tx.hold_id)].amount
            events.append((tx.created_at, 1, tx.sender_id, -tx.amount, held, tx.transaction_id))
        events.append((tx.created_at, 1, tx.receiver_id, tx.amount, 0, tx.transaction_id))
    for hold in rows.holds.values():
        events.append((hold.created_at, 1, hold.payer_id, 0, hold.amount, f"hold {hold.hold_id}"))
        if hold.state == "voided":
            release = hold.updated_at
        elif hold.state == "expired" or (hold.state == "held" and hold.expires_at <= rows.now):
            release = hold.expires_at
        else:
            continue  # captured (released with its capture row) or still active
        events.append((release, 0, hold.payer_id, 0, -hold.amount, f"release {hold.hold_id}"))
    order = {tx.transaction_id: tx.id for tx in rows.txs}
    events.sort(key=lambda e: (e[0], e[1], order.get(e[5], 0)))
    balance: dict[int, int] = defaultdict(int)
    reserved: dict[int, int] = defaultdict(int)
    lowest: dict[int, int] = {}
    problems = []
    for _, _, user, d_balance, d_held, what in events:
        balance[user] += d_balance
        reserved[user] += d_held
        available = balance[user] - reserved[user]
        lowest[user] = min(lowest.get(user, available), available)
        if available < 0 or reserved[user] < 0:
            problems.append(f"user {user}: available {available} (held {reserved[user]}) at {what}")
    for user, stored in rows.balances.items():
        if balance.get(user, 0) != stored:
            problems.append(f"user {user}: balance {stored}, replay says {balance.get(user, 0)}")
    return problems, lowest


def active_held(rows: Rows) -> dict[int, int]:
    """Each payer's ``held`` as SPEC §6 defines it, at ``rows.now``."""
    held: dict[int, int] = defaultdict(int)
    for hold in rows.holds.values():
        if hold.state == "held" and hold.expires_at > rows.now:
            held[hold.payer_id] += hold.amount
    return dict(held)


def _row_matches(op: Op, tx: Tx) -> bool:
    """Whether ``tx`` is the row ``op`` asked for (kind, parties, amount, hold, original)."""
    uid = op.user.user_id
    if tx.kind != KINDS[op.kind] or (op.amount is not None and tx.amount != op.amount):
        return False
    if op.kind == "pay":
        assert op.other is not None
        return (tx.sender_id, tx.receiver_id) == (uid, op.other.user_id)
    if op.kind == "topup":
        return tx.sender_id is None and tx.receiver_id == uid
    if op.kind == "capture":
        return tx.receiver_id == uid and tx.hold_id == op.target and tx.amount == op.moved
    return tx.sender_id == uid and tx.refund_of == op.target and tx.amount == op.moved


def check_ops(ops: list[Op], rows: Rows) -> list[str]:
    """Every success answered exists as asked, under its Idempotency-Key; every refusal and
    every "no effect" 503 left nothing (no row, hold or void of its own, its key naming
    nothing); and every row, hold and void is explained by exactly one answered success
    (or by the key of a request never answered, of which there should be none)."""
    problems = []
    by_id = {tx.transaction_id: tx for tx in rows.txs}
    claimed: dict[str, Op] = {}
    voided_by: dict[str, Op] = {}
    for op in ops:
        uid = op.user.user_id
        stored_tx, stored_hold = rows.keys.get((uid, op.key), (None, None))
        if op.outcome == "unanswered":  # it may have taken effect: explains what its key names
            if op.kind == "void":
                voided_by.setdefault(str(op.target), op)
            found = stored_hold if op.kind == "hold" else stored_tx
            if found is not None:
                claimed[found] = op
            continue
        if op.outcome != "ok":
            if stored_tx is not None or (op.kind == "hold" and stored_hold is not None):
                named = stored_tx or stored_hold
                problems.append(f"{op.outcome} {op.kind} left an effect: key names {named}: {op}")
            continue
        made = op.hold_id if op.kind == "hold" else op.transaction_id
        if op.kind == "void":
            hold = rows.holds.get(str(op.target))
            if hold is None or hold.state != "voided":
                problems.append(f"void answered 200 but the hold is {hold}")
            if str(op.target) in voided_by:
                problems.append(f"hold {op.target} voided twice: {op}")
            voided_by[str(op.target)] = op
            continue
        if made is None or made in claimed:
            problems.append(
                f"{op.kind} answered with {made}, also answered to {claimed.get(str(made))}"
            )
            continue
        claimed[made] = op
        if (stored_hold if op.kind == "hold" else stored_tx) != made:
            problems.append(f"{op.kind} {made}: its key names {stored_tx or stored_hold}")
        if op.kind == "hold":
            hold = rows.holds.get(made)
            assert op.other is not None
            asked = (uid, op.other.user_id, op.amount)
            if hold is None or (hold.payer_id, hold.receiver_id, hold.amount) != asked:
                problems.append(f"hold answered 201 as {asked}, stored as {hold}")
            continue
        tx = by_id.get(made)
        if tx is None or not _row_matches(op, tx):
            problems.append(f"{op.kind} answered with {made}, stored as {tx}: {op}")
        elif op.kind == "capture" and rows.holds[str(op.target)].state != "captured":
            problems.append(f"capture {made} answered but its hold is {rows.holds[str(op.target)]}")
    for tx in rows.txs:
        if tx.transaction_id not in claimed:
            problems.append(f"row no answered request explains: {tx}")
    for hold in rows.holds.values():
        if hold.hold_id not in claimed:
            problems.append(f"hold no answered request explains: {hold}")
        if hold.state == "voided" and hold.hold_id not in voided_by:
            problems.append(f"hold voided without a void answered 200: {hold}")
    return problems
