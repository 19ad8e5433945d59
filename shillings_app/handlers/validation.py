"""Re-validation of what the app server must not trust its peer with."""

from __future__ import annotations

import hashlib

from shillings_app.errors import InvalidAmount, InvalidRequest, Unauthenticated
from shillings_app.storage.records import IdempotencyKey
from shillings_proto import fields, pb
from shillings_proto.fields import (
    IDEMPOTENCY_KEY_RE,
    MAX_AMOUNT,
    MAX_IDEMPOTENCY_KEY,
    MAX_PASSWORD_BYTES,
    MIN_PASSWORD,
    FieldError,
)


def name(value: str, field: str, *, required: bool = True) -> str:
    try:
        return fields.name(value, field, required=required)
    except FieldError as e:
        raise InvalidRequest(str(e)) from None


def email(value: str, field: str = "email") -> str:
    """A syntactically valid email in its canonical form (``fields.email_key``)."""
    try:
        return fields.email(value, field)
    except FieldError as e:
        raise InvalidRequest(str(e)) from None


def login_email(value: str) -> str:
    """The canonical form of the email a login names (its syntax is not checked)."""
    try:
        return fields.login_email(value)
    except FieldError as e:
        raise InvalidRequest(str(e)) from None


def phone(value: str) -> str:
    try:
        return fields.phone(value)
    except FieldError as e:
        raise InvalidRequest(str(e)) from None


def password(value: str) -> str:
    if len(value) < MIN_PASSWORD:
        raise InvalidRequest(f"password must be at least {MIN_PASSWORD} characters")
    if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise InvalidRequest(f"password must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


def amount(value: int) -> int:
    """Cents: > 0 and <= 1,000,000.00."""
    if value <= 0 or value > MAX_AMOUNT:
        raise InvalidAmount()
    return value


def auth(value: pb.Auth) -> tuple[int, str]:
    """The (user_id, token_id) the peer took from a verified JWT."""
    if value.user_id == 0 or not value.token_id or len(value.token_id) > 64:
        raise Unauthenticated()
    return value.user_id, value.token_id


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
