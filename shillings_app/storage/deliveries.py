"""Webhook deliveries (SPEC §7): the transactions the delivery workers run. Fan-out turns
new events into one delivery per matching endpoint; a claim leases due deliveries to one
worker (``FOR UPDATE SKIP LOCKED``, ``next_attempt_at`` pushed past the send); a record
writes an attempt's outcome and the next attempt, or the delivery's end."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ALL_TYPES = ""
"""``webhooks.event_types`` of an endpoint that receives every type; else a comma list."""


def wants(event_types: str, event_type: str) -> bool:
    """True if an endpoint subscribed to ``event_types`` receives events of ``event_type``."""
    return event_types == ALL_TYPES or event_type in event_types.split(",")


@dataclass(frozen=True)
class Claimed:
    """A delivery leased to this worker until ``lease``, with what sending it needs."""

    delivery_id: int
    attempts: int
    """Attempts recorded before this one."""
    lease: datetime
    webhook_row: int
    webhook_id: str
    url: str
    secret_sealed: bytes
    failing: bool
    """The endpoint had failed since its last success (when claimed)."""
    event_id: str
    event_type: str
    event_data: str
    event_created_at: datetime


@dataclass(frozen=True)
class Outcome:
    """One attempt's result: ``status_code`` 0 when no HTTP answer came (``error`` says why)."""

    status_code: int
    error: str
    duration_ms: int

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status_code < 300 and not self.error


READ_COMMITTED = "SET TRANSACTION ISOLATION LEVEL READ COMMITTED"
"""The first statement of the fan-out and claim transactions: under REPEATABLE READ the
UPDATE of the rows just locked also locks the next row of the range (next-key), and another
worker's ``SKIP LOCKED`` scan then finds nothing at all."""


def _marks(values: list[Any]) -> str:
    return ", ".join(["%s"] * len(values))


def fanout_txn(txn: Any, limit: int, at: datetime) -> int:
    """Up to ``limit`` undispatched events, oldest first (rows another worker holds are
    skipped): one delivery per enabled endpoint of the event's user that wants its type,
    due at ``at``; the events marked dispatched. Returns the number of events taken."""
    txn.execute(READ_COMMITTED)
    txn.execute(
        "SELECT id, user_id, type FROM events WHERE dispatched = 0"
        " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED",
        (limit,),
    )
    events = txn.fetchall()
    if not events:
        return 0
    users = sorted({row[1] for row in events})
    txn.execute(
        f"SELECT id, user_id, event_types FROM webhooks"
        f" WHERE user_id IN ({_marks(users)}) AND state = 'enabled'",
        users,
    )
    endpoints: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for webhook_row, user_id, event_types in txn.fetchall():
        endpoints[user_id].append((webhook_row, event_types))
    args: list[Any] = []
    for event_row, user_id, event_type in events:
        for webhook_row, event_types in endpoints[user_id]:
            if wants(event_types, event_type):
                args += [webhook_row, event_row, at, at, at]
    if args:
        rows = ", ".join(["(%s, %s, %s, %s, %s)"] * (len(args) // 5))
        txn.execute(
            "INSERT INTO deliveries (webhook_id, event_id, next_attempt_at, created_at,"
            f" updated_at) VALUES {rows}",
            args,
        )
    ids = [row[0] for row in events]
    txn.execute(f"UPDATE events SET dispatched = 1 WHERE id IN ({_marks(ids)})", ids)
    return len(events)


def claim_txn(txn: Any, limit: int, at: datetime, lease: datetime) -> list[Claimed]:
    """Lease up to ``limit`` pending deliveries due at ``at`` until ``lease`` (rows another
    worker holds are skipped). Deliveries of an endpoint no longer enabled (disabled,
    deleted) end as failed instead."""
    txn.execute(READ_COMMITTED)
    txn.execute(
        "SELECT id FROM deliveries WHERE state = 'pending' AND next_attempt_at <= %s"
        " ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED",
        (at, limit),
    )
    ids = [row[0] for row in txn.fetchall()]
    if not ids:
        return []
    txn.execute(
        f"UPDATE deliveries SET next_attempt_at = %s, updated_at = %s WHERE id IN ({_marks(ids)})",
        [lease, at, *ids],
    )
    txn.execute(
        "SELECT d.id, d.attempts, w.id, w.webhook_id, w.url, w.secret_sealed,"
        " w.failing_since IS NOT NULL, w.state, e.event_id, e.type, e.data, e.created_at"
        " FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        f" JOIN events e ON e.id = d.event_id WHERE d.id IN ({_marks(ids)}) ORDER BY d.id",
        ids,
    )
    claimed, ended = [], []
    for row in txn.fetchall():
        if row[7] != "enabled":
            ended.append(row[0])
            continue
        claimed.append(
            Claimed(
                delivery_id=row[0],
                attempts=row[1],
                lease=lease,
                webhook_row=row[2],
                webhook_id=row[3],
                url=row[4],
                secret_sealed=bytes(row[5]),
                failing=bool(row[6]),
                event_id=row[8],
                event_type=row[9],
                event_data=row[10],
                event_created_at=row[11],
            )
        )
    if ended:
        txn.execute(
            f"UPDATE deliveries SET state = 'failed', updated_at = %s"
            f" WHERE id IN ({_marks(ended)})",
            [at, *ended],
        )
    return claimed


@dataclass(frozen=True)
class Recorded:
    """What ``record_txn`` did: ``state`` of the delivery after it (``""``: nothing, the
    lease had passed to another worker), and whether the endpoint got disabled."""

    state: str
    disabled: bool = False


def record_txn(
    txn: Any,
    claimed: Claimed,
    outcome: Outcome,
    at: datetime,
    retry_at: datetime | None,
    disable_before: datetime,
) -> Recorded:
    """Record attempt ``claimed.attempts + 1`` made at ``at``: the delivery succeeded, is
    due again at ``retry_at``, or (``None``) failed for good. Only while the lease is still
    this worker's. A success clears the endpoint's ``failing_since``; a failure sets it. A
    delivery failing for good disables its endpoint if that has failed without a success
    since ``disable_before`` (the whole retry schedule ago) or earlier."""
    if outcome.succeeded:
        state, due = "succeeded", at
    elif retry_at is not None:
        state, due = "pending", retry_at
    else:
        state, due = "failed", at
    attempt = claimed.attempts + 1
    txn.execute(
        "UPDATE deliveries SET state = %s, attempts = %s, next_attempt_at = %s, updated_at = %s"
        " WHERE id = %s AND state = 'pending' AND attempts = %s AND next_attempt_at = %s",
        (state, attempt, due, at, claimed.delivery_id, claimed.attempts, claimed.lease),
    )
    if txn.rowcount != 1:
        return Recorded("")
    txn.execute(
        "INSERT INTO delivery_attempts (delivery_id, webhook_id, attempt, status_code, error,"
        " duration_ms, attempted_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (
            claimed.delivery_id,
            claimed.webhook_row,
            attempt,
            outcome.status_code,
            outcome.error[:255],
            outcome.duration_ms,
            at,
        ),
    )
    if outcome.succeeded:
        if claimed.failing:
            txn.execute(
                "UPDATE webhooks SET failing_since = NULL WHERE id = %s", (claimed.webhook_row,)
            )
        return Recorded(state)
    txn.execute(
        "SELECT state, failing_since FROM webhooks WHERE id = %s FOR UPDATE",
        (claimed.webhook_row,),
    )
    webhook_state, failing_since = txn.fetchone()
    disable = (
        state == "failed"
        and webhook_state == "enabled"
        and failing_since is not None
        and failing_since <= disable_before
    )
    txn.execute(
        "UPDATE webhooks SET state = %s, failing_since = %s, updated_at = %s WHERE id = %s",
        (
            "disabled" if disable else webhook_state,
            failing_since or at,
            at,
            claimed.webhook_row,
        ),
    )
    return Recorded(state, disable)


def backlog_txn(txn: Any) -> tuple[int, int]:
    """Events not fanned out yet, and deliveries pending (due or waiting for a retry)."""
    txn.execute("SELECT COUNT(*) FROM events WHERE dispatched = 0")
    (events,) = txn.fetchone()
    txn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'")
    (deliveries,) = txn.fetchone()
    return int(events), int(deliveries)
