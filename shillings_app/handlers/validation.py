"""Re-validation of what the app server must not trust its peer with. The field rules
themselves are ``shillings_proto.fields`` (called directly; the dispatcher maps their
``FieldError`` to ``invalid_request``)."""

from __future__ import annotations

import hashlib

from shillings_app.errors import HoldNotFound, InvalidAmount, InvalidRequest, Unauthenticated
from shillings_app.storage.records import IdempotencyKey
from shillings_proto import fields, pb
from shillings_proto.fields import (
    DEFAULT_PAGE,
    IDEMPOTENCY_KEY_RE,
    MAX_IDEMPOTENCY_KEY,
    MAX_PAGE,
    amount_in_range,
)


def amount(value: int) -> int:
    """Cents: > 0 and <= 1,000,000.00."""
    if not amount_in_range(value):
        raise InvalidAmount()
    return value


def amount_or_all(value: int) -> int:
    """An optional amount: 0 (unset) meaning all of it, else ``amount``."""
    return amount(value) if value else 0


def auth(value: pb.Auth) -> tuple[int, str]:
    """The (user_id, token_id) the peer took from a verified JWT."""
    if value.user_id == 0 or not value.token_id or len(value.token_id) > 64:
        raise Unauthenticated()
    return value.user_id, value.token_id


def receiver_email(value: str) -> str:
    """The normalised receiver of a payment or hold (``fields.email``); required."""
    if not value.strip():
        raise InvalidRequest("receiver_email is required")
    return fields.email(value, "receiver_email")


def idempotency_key(key: str, command: str, *parts: object) -> IdempotencyKey | None:
    """None for an empty key; else the key with a hash of the command and its arguments."""
    if not key:
        return None
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise InvalidRequest(
            f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    digest = hashlib.sha256("\x00".join([command, *map(str, parts)]).encode("utf-8")).digest()
    return IdempotencyKey(key=key, command=command, request_hash=digest)


def hold_id(value: str) -> str:
    """A hold id in its canonical form (``fields.public_id``: either case); anything else
    names no hold."""
    canonical = fields.public_id(value)
    if canonical is None:
        raise HoldNotFound()
    return canonical


def page_limit(value: int) -> int:
    """A page size: 1 to ``MAX_PAGE``, 0 meaning the default."""
    if value > MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}")
    return value or DEFAULT_PAGE
