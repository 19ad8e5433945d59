"""What clients were told, and the checks that reconcile it with MySQL.

Every request that can move money is recorded client-side (kind, user, amount,
Idempotency-Key, final status, transaction_id, reported balance, send/answer times).
``check_invariants`` runs the product's own ledger check (``shillings-app reconcile``:
balances against their transactions, money conservation, no negative balance, keys naming
their transactions), then compares those records with the stack's MariaDB rows.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shillings_app.reconcile import reconcile
from tests.reliability.stack import Stack

REFUSAL_SLACK_S = 0.002
"""Clock granularity allowed between the client's clock and MariaDB's UTC_TIMESTAMP(6)."""


@dataclass
class Record:
    """One money-moving request as its client saw it (after all its retries)."""

    kind: str  # "payment" or "topup"
    user_id: int  # the sender of a payment, the user topped up
    amount: int  # cents
    receiver_id: int | None = None
    key: str | None = None
    status: int | None = None  # final HTTP status; None: never answered
    reason: str | None = None
    transaction_id: str | None = None
    balance: int | None = None  # balance reported in the answer, cents
    sent: float = 0.0  # time.time() when the answered attempt was sent
    answered: float = 0.0
    attempts: int = 0


@dataclass
class Ledger:
    """Thread-safe list of records for one stack."""

    records: list[Record] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: Record) -> None:
        with self.lock:
            self.records.append(record)


@dataclass(frozen=True)
class Row:
    id: int
    transaction_id: str
    kind: str
    sender_id: int | None
    receiver_id: int
    amount: int
    created_at: float


@dataclass
class Summary:
    """What one invariant check found (problems is empty when every invariant holds)."""

    problems: list[str]
    rows: int
    payments: int
    topups: int
    total_balance: int
    total_topups: int
    cents_lost: int
    timelines: dict[int, list[tuple[float, int]]]


def cents(text: str) -> int:
    """ "12.34" -> 1234 (the API's two-decimal strings; never through float)."""
    whole, _, frac = text.partition(".")
    return int(whole) * 100 + int((frac + "00")[:2])


def _epoch(value: datetime) -> float:
    return value.replace(tzinfo=UTC).timestamp()


def load_rows(stack: Stack) -> list[Row]:
    rows = stack.query(
        "SELECT id, transaction_id, kind, sender_id, receiver_id, amount, created_at"
        " FROM transactions ORDER BY id"
    )
    return [
        Row(
            int(r[0]),
            r[1],
            r[2],
            None if r[3] is None else int(r[3]),
            int(r[4]),
            int(r[5]),
            _epoch(r[6]),
        )
        for r in rows
    ]


def stored_keys(stack: Stack) -> dict[tuple[int, str], str | None]:
    """(user_id, Idempotency-Key) -> the transaction_id stored with it."""
    return {
        (int(user_id), key): transaction_id
        for user_id, key, transaction_id in stack.query(
            "SELECT user_id, idem_key, transaction_id FROM idempotency_keys"
        )
    }


def _replay(
    rows: list[Row], problems: list[str]
) -> tuple[dict[str, dict[int, int]], dict[int, list[tuple[float, int]]]]:
    """Apply every row in id order: the balances right after each row, and each user's
    (time, balance after) timeline. A balance that went negative at any point, even if it
    is back above zero now, is a problem."""
    balance: dict[int, int] = defaultdict(int)
    after: dict[str, dict[int, int]] = {}
    timelines: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for row in rows:
        touched = []
        if row.sender_id is not None:
            balance[row.sender_id] -= row.amount
            touched.append(row.sender_id)
        balance[row.receiver_id] += row.amount
        touched.append(row.receiver_id)
        after[row.transaction_id] = {uid: balance[uid] for uid in touched}
        for uid in touched:
            if balance[uid] < 0:
                problems.append(f"user {uid} negative ({balance[uid]}) after {row.transaction_id}")
            line = timelines[uid]
            if line and row.created_at < line[-1][0]:
                problems.append(f"user {uid}: rows out of time order at {row.transaction_id}")
            line.append((row.created_at, balance[uid]))
    return after, dict(timelines)


def _shape(rec: Record) -> tuple[str, int | None, int | None, int]:
    """(kind, sender, receiver, amount) a request asked for."""
    if rec.kind == "payment":
        return (rec.kind, rec.user_id, rec.receiver_id, rec.amount)
    return (rec.kind, None, rec.user_id, rec.amount)


def _row_shape(row: Row) -> tuple[str, int | None, int | None, int]:
    return (row.kind, row.sender_id, row.receiver_id, row.amount)


def check_invariants(stack: Stack, ledger: Ledger) -> Summary:
    """Money conservation, no negative balance, and client records reconciled with rows."""
    report = reconcile(f"mysql://root@localhost/shillings?unix_socket={stack.mysql_socket}")
    problems: list[str] = list(report.problems)
    rows = load_rows(stack)
    keys = stored_keys(stack)
    with ledger.lock:
        records = list(ledger.records)

    total_balance, total_topups = report.total_balance, report.total_topups
    lost = abs(total_topups - total_balance)
    after, timelines = _replay(rows, problems)

    by_tx = {row.transaction_id: row for row in rows}
    answered = [r for r in records if r.status == 200]
    claims: dict[str, list[Record]] = defaultdict(list)
    per_key: dict[tuple[int, str], set[str]] = defaultdict(set)
    for rec in answered:
        if not rec.transaction_id:
            problems.append(f"answered 200 without transaction_id: {rec}")
            continue
        claims[rec.transaction_id].append(rec)
        if rec.key is not None:
            per_key[(rec.user_id, rec.key)].add(rec.transaction_id)
        row = by_tx.get(rec.transaction_id)
        if row is None:
            problems.append(f"answered 200 but no row (effect missing): {rec}")
            lost += rec.amount
            continue
        if _shape(rec) != _row_shape(row):
            problems.append(f"row {row} does not match the request {rec}")
        if rec.balance is not None and after[row.transaction_id].get(rec.user_id) != rec.balance:
            problems.append(
                f"{rec.transaction_id}: answered balance {rec.balance}, rows say "
                f"{after[row.transaction_id].get(rec.user_id)}"
            )
        if rec.key is not None and keys.get((rec.user_id, rec.key)) != rec.transaction_id:
            problems.append(f"idempotency key of {rec} stores {keys.get((rec.user_id, rec.key))}")
    for (uid, key), tx_ids in per_key.items():
        if len(tx_ids) > 1:
            problems.append(f"key {key!r} of user {uid} paid more than once: {sorted(tx_ids)}")
    for tx_id, recs in claims.items():
        if len({(r.user_id, r.key) for r in recs}) > 1 or (recs[0].key is None and len(recs) > 1):
            problems.append(f"{tx_id} was answered to different requests: {recs}")

    # Rows nobody was told about may only come from requests that never got an answer
    # (each such request explains at most one row, by its key when it had one).
    unanswered = [r for r in records if r.status is None or r.status >= 500]
    for row in rows:
        if row.transaction_id in claims:
            continue
        match = None
        for rec in unanswered:
            if rec.key is not None:
                if keys.get((rec.user_id, rec.key)) == row.transaction_id:
                    match = rec
                    break
            elif _shape(rec) == _row_shape(row):
                match = rec
                break
        if match is None:
            problems.append(f"row without a request that asked for it: {row}")
            lost += row.amount
        else:
            unanswered.remove(match)

    return Summary(
        problems=problems,
        rows=len(rows),
        payments=sum(1 for r in rows if r.kind == "payment"),
        topups=sum(1 for r in rows if r.kind == "topup"),
        total_balance=total_balance,
        total_topups=total_topups,
        cents_lost=lost,
        timelines=timelines,
    )


def balance_between(timeline: list[tuple[float, int]], start: float, end: float) -> list[int]:
    """Every balance a user had at some moment in [start, end] (0 before its first row)."""
    before = 0
    seen: list[int] = []
    for when, bal in timeline:
        if when < start:
            before = bal
        elif when <= end:
            seen.append(bal)
        else:
            break
    return [before, *seen]


def wrong_refusals(
    records: list[Record], timelines: dict[int, list[tuple[float, int]]]
) -> list[str]:
    """Insufficient-funds answers given while the sender's balance covered the amount the
    whole time the request was in flight."""
    wrong = []
    for rec in records:
        if rec.kind != "payment" or rec.reason != "insufficient_funds":
            continue
        seen = balance_between(
            timelines.get(rec.user_id, []), rec.sent - REFUSAL_SLACK_S, rec.answered
        )
        if min(seen) >= rec.amount:
            wrong.append(f"refused {rec.amount} while balance was always >= {min(seen)}: {rec}")
    return wrong


def summary_text(summary: Summary) -> str:
    return "\n".join(summary.problems[:40]) + (
        f"\n... and {len(summary.problems) - 40} more" if len(summary.problems) > 40 else ""
    )


def as_dict(summary: Summary) -> dict[str, Any]:
    return {
        "rows": summary.rows,
        "payments": summary.payments,
        "topups": summary.topups,
        "total_balance": summary.total_balance,
        "cents_lost": summary.cents_lost,
    }
