"""A user's events (the outbox, ``storage/events.py``), newest first, with keyset pagination
on the internal id over ``events_user`` / ``events_user_type``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shillings_app.storage.auth import authenticate


@dataclass(frozen=True)
class EventRecord:
    id: int
    event_id: str
    type: str
    data: str
    """The API's JSON of the transaction or hold, as stored."""
    created_at: datetime


def events_txn(
    txn: Any, user_id: int, token_id: str, type_: str, limit: int, before_id: int | None
) -> list[EventRecord]:
    """Up to ``limit`` of the user's events with id < ``before_id`` (all when None) and of
    type ``type_`` (any when empty), newest first: a range of one index, O(limit)."""
    authenticate(txn, user_id, token_id)
    upper = before_id if before_id is not None else 2**63
    by_type = " AND type = %s" if type_ else ""
    txn.execute(
        "SELECT id, event_id, type, data, created_at FROM events"
        f" WHERE user_id = %s{by_type} AND id < %s ORDER BY id DESC LIMIT %s",
        (user_id, *([type_] if type_ else []), upper, limit),
    )
    return [EventRecord(*row) for row in txn.fetchall()]
