"""The rules for user-supplied fields, shared by the web layer (which validates at the
edge) and the app server (which must not trust its peer): one definition of a valid name,
email, phone, password length and idempotency key, and of the one canonical form of an
email (``email_key``) under which accounts are stored, looked up, cached and put in tokens.
Each layer maps ``FieldError`` to its own error."""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 64
MAX_EMAIL = 254
MAX_EMAIL_LOCAL = 64
MAX_DOMAIN_LABEL = 63
MIN_PASSWORD = 8
MAX_PASSWORD_BYTES = 72
"""bcrypt reads at most 72 bytes; longer passwords are refused rather than truncated."""
MAX_IDEMPOTENCY_KEY = 255
MAX_AMOUNT = 100_000_000
"""Largest amount of one operation, in cents (1,000,000.00)."""
AMOUNT_RANGE = "amount must be > 0 and <= 1000000.00"
"""What a valid amount is, as both layers say it when one is not."""
DEFAULT_PAGE = 20
MAX_PAGE = 100
"""Transactions per history page: the default and the most one request may ask for."""

IDEMPOTENCY_KEY_RE = re.compile(rf"^[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}$")
_ATOM_RE = re.compile(r"(?:[a-z0-9!#$%&'*+/=?^_`{|}~-]|[^\x00-\x7f])+")
"""A dot-separated part of an email's local part (RFC 5322 ``atext``, lowercase as canonical
emails are, and any character beyond ASCII, RFC 6531): no quoted strings, comments,
brackets, commas or spaces."""
_LABEL_RE = re.compile(
    r"(?:[a-z0-9]|[^\x00-\x7f])(?:(?:[a-z0-9-]|[^\x00-\x7f])*(?:[a-z0-9]|[^\x00-\x7f]))?"
)
"""A label of an email's domain: letters, digits and inner hyphens (RFC 1035), or any
character beyond ASCII (an internationalized name): no underscores."""
_PHONE_RE = re.compile(r"^\+?[0-9]{7,15}$")
_PHONE_SEPARATORS = re.compile(r"[ \-().]")

FORBIDDEN_RE = re.compile(
    "[\x00-\x1f\x7f-\x9f"  # control characters (Unicode category Cc)
    "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"  # bidi marks, embeddings, overrides, isolates
    "\u2028\u2029"  # line and paragraph separators
    "\ud800-\udfff]"  # lone surrogates (cannot be encoded as UTF-8)
)
"""Characters refused in every text field: they reorder, hide or break what is displayed."""

_DEFAULT_IGNORABLE_RE = re.compile(
    "[\u00ad\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
"""Unicode's Default_Ignorable_Code_Point set: invisible, so refused in emails."""

_EMAIL_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp", "Zs"})
"""Controls, format characters, unassigned and private-use code points, and spaces. Refusing
unassigned code points keeps ``email_key`` stable across Unicode versions (NFKC and case
folding never change for assigned characters)."""


class FieldError(ValueError):
    """A field breaks its rule; the message names the field."""


def text(value: str, field: str) -> str:
    """``value`` unchanged, unless it holds a character refused in every text field."""
    if FORBIDDEN_RE.search(value):
        raise FieldError(f"{field} must not contain control, bidi or invalid characters")
    return value


def email_key(value: str) -> str:
    """The canonical form of an email: NFKC, then full case folding, then NFKC again.

    Lookalikes compare equal: NFC and NFD accents, full-width letters, ligatures (``ﬁ``),
    and every case variant (capital, small and final Greek sigma fold alike, which
    ``str.lower`` does not do).
    This is the form stored in ``users.email``, looked up, put in tokens and cached by.
    """
    folded = unicodedata.normalize("NFKC", value).casefold()
    return unicodedata.normalize("NFKC", folded).strip()


def email(value: str, field: str = "email") -> str:
    """A syntactically valid email in its canonical form (``email_key``), with no control,
    bidi, invisible, unassigned or private-use characters."""
    key = text(email_key(text(value, field)), field)
    if not key:
        raise FieldError(f"{field} is required")
    if _DEFAULT_IGNORABLE_RE.search(key) or any(
        unicodedata.category(c) in _EMAIL_REFUSED_CATEGORIES for c in key if not c.isascii()
    ):
        raise FieldError(f"{field} must not contain invisible, unassigned or private characters")
    if len(key) > MAX_EMAIL or not _address(key):
        raise FieldError(f"{field} is not a valid email address")
    return key


def _address(key: str) -> bool:
    """Whether ``key`` is ``local@domain``: a local part of dot-separated atoms of at most
    ``MAX_EMAIL_LOCAL`` characters (no leading, trailing or double dot), and a domain of
    two or more labels whose last is not all digits (no ``a@127.0.0.1``)."""
    local, _, domain = key.partition("@")
    if not 0 < len(local) <= MAX_EMAIL_LOCAL or "@" in domain:
        return False
    labels = domain.split(".")
    return (
        all(_ATOM_RE.fullmatch(atom) for atom in local.split("."))
        and len(labels) >= 2
        and all(len(label) <= MAX_DOMAIN_LABEL and _LABEL_RE.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()
    )


def login_email(value: str, field: str = "email") -> str:
    """The canonical form of an email given to log in: what ``email`` checks short of its
    syntax (an unknown address gets the same answer as a wrong password)."""
    key = email_key(text(value, field))
    if not key:
        raise FieldError(f"{field} is required")
    if len(key) > MAX_EMAIL:
        raise FieldError(f"{field} must be at most {MAX_EMAIL} characters")
    return key


def name(value: str, field: str, *, required: bool = True) -> str:
    """A person's name: NFC, stripped, at most ``MAX_NAME`` characters, no control or bidi
    characters."""
    value = unicodedata.normalize("NFC", text(value, field)).strip()
    if required and not value:
        raise FieldError(f"{field} is required")
    if len(value) > MAX_NAME:
        raise FieldError(f"{field} must be at most {MAX_NAME} characters")
    return value


def phone(value: str) -> str:
    """7 to 15 digits with an optional leading +; spaces, dashes, dots, parentheses dropped."""
    normalized = _PHONE_SEPARATORS.sub("", value.strip())
    if not _PHONE_RE.match(normalized):
        raise FieldError("phone must be 7 to 15 digits, optionally starting with +")
    return normalized


def new_password(value: str) -> str:
    """A password to set: at least ``MIN_PASSWORD`` characters, at most
    ``MAX_PASSWORD_BYTES`` bytes of UTF-8 (all bcrypt reads)."""
    if len(value) < MIN_PASSWORD:
        raise FieldError(f"password must be at least {MIN_PASSWORD} characters")
    if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise FieldError(f"password must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


def amount_in_range(cents: int) -> bool:
    """An amount of one operation: more than 0, at most ``MAX_AMOUNT`` cents."""
    return 0 < cents <= MAX_AMOUNT


_PUBLIC_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def public_id(value: str) -> str | None:
    """The canonical (lower-case, hyphenated) form of a UUID naming an object (a
    transaction, a hold, a webhook endpoint), given in either case (UUIDs are
    case-insensitive on input, RFC 9562); None when ``value`` is not one, so no object has
    that id. The one rule of every id a request names."""
    lowered = value.lower()
    return lowered if _PUBLIC_ID_RE.fullmatch(lowered) else None
