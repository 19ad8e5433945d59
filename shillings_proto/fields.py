"""The rules for user-supplied fields, shared by the web layer (which validates at the
edge) and the app server (which must not trust its peer): one definition of a valid name,
email, phone, password length and idempotency key. Each layer maps ``FieldError`` to its
own error."""

from __future__ import annotations

import re

MAX_NAME = 64
MAX_EMAIL = 254
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72
"""bcrypt reads at most 72 bytes; longer passwords are refused rather than truncated."""
MAX_IDEMPOTENCY_KEY = 255
MAX_AMOUNT = 100_000_000
"""Largest amount of one operation, in cents (1,000,000.00)."""

IDEMPOTENCY_KEY_RE = re.compile(rf"^[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_PHONE_RE = re.compile(r"^\+?[0-9]{7,15}$")
_PHONE_SEPARATORS = re.compile(r"[ \-().]")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


class FieldError(ValueError):
    """A field breaks its rule; the message names the field."""


def name(value: str, field: str, *, required: bool = True) -> str:
    """A person's name: stripped, at most ``MAX_NAME`` characters, no control characters."""
    value = value.strip()
    if required and not value:
        raise FieldError(f"{field} is required")
    if len(value) > MAX_NAME:
        raise FieldError(f"{field} must be at most {MAX_NAME} characters")
    if _CONTROL_RE.search(value):
        raise FieldError(f"{field} must not contain control characters")
    return value


def email(value: str, field: str = "email") -> str:
    """A syntactically valid email, lower-cased (emails are compared case-insensitively)."""
    value = value.strip().lower()
    if not value:
        raise FieldError(f"{field} is required")
    if len(value) > MAX_EMAIL or not _EMAIL_RE.match(value):
        raise FieldError(f"{field} is not a valid email address")
    return value


def phone(value: str) -> str:
    """7 to 15 digits with an optional leading +; spaces, dashes, dots, parentheses dropped."""
    normalized = _PHONE_SEPARATORS.sub("", value.strip())
    if not _PHONE_RE.match(normalized):
        raise FieldError("phone must be 7 to 15 digits, optionally starting with +")
    return normalized
