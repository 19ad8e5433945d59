"""The statements of webhook endpoints and their delivery log (migration 0006). The rules
that choose among them live in the operations (``handlers/webhook_create.py``,
``handlers/webhooks.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

MAX_WEBHOOKS = 5
"""Endpoints a user may have that are not deleted (SPEC §7)."""

_COLUMNS = "id, webhook_id, url, event_types, state, secret_sealed, created_at"


@dataclass(frozen=True)
class WebhookRecord:
    id: int
    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    """Empty: every type."""
    state: str
    secret_sealed: bytes
    created_at: datetime


@dataclass(frozen=True)
class AttemptRecord:
    id: int
    event_id: str
    attempt: int
    status_code: int
    error: str
    duration_ms: int
    attempted_at: datetime


def _webhook(row: Sequence[Any]) -> WebhookRecord:
    id_, webhook_id, url, types, state, sealed, created_at = row
    event_types = tuple(types.split(",")) if types else ()
    return WebhookRecord(int(id_), webhook_id, url, event_types, state, bytes(sealed), created_at)


def lock_user(txn: Any, user_id: int) -> int | None:
    """Lock the user's row (registrations of one user's endpoints take turns); their
    balance, or None if the user does not exist."""
    txn.execute("SELECT balance FROM users WHERE user_id = %s FOR UPDATE", (user_id,))
    row = txn.fetchone()
    return int(row[0]) if row is not None else None


def count_live(txn: Any, user_id: int) -> int:
    """The user's endpoints that are not deleted (``webhooks_user`` index), as committed
    now: a locking read, since the transaction's snapshot may predate the user's row lock
    (under REPEATABLE READ a plain read would miss an endpoint committed while it waited)."""
    txn.execute(
        "SELECT COUNT(*) FROM webhooks WHERE user_id = %s AND state <> 'deleted'"
        " LOCK IN SHARE MODE",
        (user_id,),
    )
    return int(txn.fetchone()[0])


def insert(
    txn: Any,
    *,
    webhook_id: str,
    user_id: int,
    url: str,
    event_types: Sequence[str],
    secret_sealed: bytes,
    at: datetime,
) -> WebhookRecord:
    """Insert an enabled endpoint; the record as written."""
    txn.execute(
        "INSERT INTO webhooks (webhook_id, user_id, url, event_types, state, secret_sealed,"
        " created_at, updated_at) VALUES (%s, %s, %s, %s, 'enabled', %s, %s, %s)",
        (webhook_id, user_id, url, ",".join(event_types), secret_sealed, at, at),
    )
    return WebhookRecord(
        int(txn.lastrowid), webhook_id, url, tuple(event_types), "enabled", secret_sealed, at
    )


def find(txn: Any, user_id: int, webhook_id: str, current: bool = False) -> WebhookRecord | None:
    """The user's endpoint ``webhook_id`` in any state (another user's: None); ``current``:
    a locking read, for one that may have been committed after the transaction's snapshot."""
    lock = " LOCK IN SHARE MODE" if current else ""
    txn.execute(
        f"SELECT {_COLUMNS} FROM webhooks WHERE webhook_id = %s AND user_id = %s{lock}",
        (webhook_id, user_id),
    )
    row = txn.fetchone()
    return _webhook(row) if row is not None else None


def list_live(txn: Any, user_id: int) -> list[WebhookRecord]:
    """The user's endpoints that are not deleted, oldest first."""
    txn.execute(
        f"SELECT {_COLUMNS} FROM webhooks WHERE user_id = %s AND state <> 'deleted' ORDER BY id",
        (user_id,),
    )
    return [_webhook(row) for row in txn.fetchall()]


def mark_deleted(txn: Any, user_id: int, webhook_id: str) -> bool:
    """Set the user's endpoint to ``deleted`` (its rows stay, for the delivery log; workers
    send nothing more to it); False if it is not theirs or already deleted."""
    txn.execute(
        "UPDATE webhooks SET state = 'deleted', updated_at = UTC_TIMESTAMP(6)"
        " WHERE webhook_id = %s AND user_id = %s AND state <> 'deleted'",
        (webhook_id, user_id),
    )
    return int(txn.rowcount) == 1


def attempts(txn: Any, webhook: int, limit: int, before_id: int | None) -> list[AttemptRecord]:
    """Up to ``limit`` delivery attempts to endpoint ``webhook`` (internal id) with id <
    ``before_id`` (all when None), newest first (``delivery_attempts_webhook`` index)."""
    upper = before_id if before_id is not None else 2**63
    txn.execute(
        "SELECT a.id, e.event_id, a.attempt, a.status_code, a.error, a.duration_ms,"
        " a.attempted_at FROM delivery_attempts AS a"
        " JOIN deliveries AS d ON d.id = a.delivery_id JOIN events AS e ON e.id = d.event_id"
        " WHERE a.webhook_id = %s AND a.id < %s ORDER BY a.id DESC LIMIT %s",
        (webhook, upper, limit),
    )
    return [AttemptRecord(*row) for row in txn.fetchall()]
