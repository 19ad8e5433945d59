"""Re-validation of what the app server must not trust its peer with."""

from __future__ import annotations

import hashlib
import re

from shillings_app.errors import InvalidAmount, InvalidRequest, Unauthenticated
from shillings_app.storage.records import MAX_AMOUNT, IdempotencyKey
from shillings_proto import pb

MAX_NAME = 64
MAX_EMAIL = 254
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72
MAX_IDEMPOTENCY_KEY = 255
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE_RE = re.compile(r"^\+?[0-9]{7,15}$")
_PHONE_SEPARATORS = re.compile(r"[ \-().]")
_IDEMPOTENCY_KEY_RE = re.compile(rf"^[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def name(value: str, field: str, *, required: bool = True) -> str:
    value = value.strip()
    if required and not value:
        raise InvalidRequest(f"{field} is required")
    if len(value) > MAX_NAME:
        raise InvalidRequest(f"{field} must be at most {MAX_NAME} characters")
    if _CONTROL_RE.search(value):
        raise InvalidRequest(f"{field} must not contain control characters")
    return value


def email(value: str, field: str = "email") -> str:
    """A syntactically valid email, lower-cased (emails are compared case-insensitively)."""
    value = value.strip().lower()
    if not value:
        raise InvalidRequest(f"{field} is required")
    if len(value) > MAX_EMAIL or not _EMAIL_RE.match(value):
        raise InvalidRequest(f"{field} is not a valid email address")
    return value


def phone(value: str) -> str:
    """7 to 15 digits with an optional leading +; spaces, dashes, dots, parentheses dropped."""
    normalized = _PHONE_SEPARATORS.sub("", value.strip())
    if not _PHONE_RE.match(normalized):
        raise InvalidRequest("phone must be 7 to 15 digits, optionally starting with +")
    return normalized


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
    if not _IDEMPOTENCY_KEY_RE.match(key):
        raise InvalidRequest(
            f"idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    digest = hashlib.sha256("\x00".join([command, *map(str, parts)]).encode("utf-8")).digest()
    return IdempotencyKey(key=key, command=command, request_hash=digest)
