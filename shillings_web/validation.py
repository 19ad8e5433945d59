"""Request validation at the edge: JSON bodies, fields, query strings, headers.

Every failure raises an ``ApiError`` whose message names the offending field,
so the app server only ever sees well-formed requests.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from shillings_proto import fields, pb
from shillings_proto.fields import (
    IDEMPOTENCY_KEY_RE,
    MAX_IDEMPOTENCY_KEY,
    MAX_PASSWORD_BYTES,
    FieldError,
)
from shillings_web.errors import (
    ApiError,
    invalid_amount,
    invalid_request,
    parameter_duplicated,
    parameter_unknown,
    transaction_not_found,
    unsupported_media_type,
)
from shillings_web.money import AmountError, parse_amount

_CURSOR_RE = re.compile(r"^[\x21-\x7e]{1,512}$")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")

SIGNUP_FIELDS = frozenset({"first_name", "middle_name", "last_name", "email", "phone", "password"})
LOGIN_FIELDS = frozenset({"email", "password"})
PAY_FIELDS = frozenset({"receiver_email", "amount"})
TOPUP_FIELDS = frozenset({"amount"})
HOLD_FIELDS = frozenset({"receiver_email", "amount", "expires_in"})
CAPTURE_FIELDS = frozenset({"amount"})
HOLD_ROLES = ("payer", "receiver")
HOLD_STATES = ("held", "captured", "voided", "expired")
MAX_EXPIRES_IN = 2_592_000
"""The longest ``expires_in`` of a hold (SPEC). Its shortest is the app server's
(``SHILLINGS_HOLD_MIN_EXPIRES_IN``, 60 unless set shorter for tests): the web layer checks
only the type, that it is positive, and the upper bound."""
WEBHOOK_FIELDS = frozenset({"url", "event_types"})
REFUND_FIELDS = frozenset({"transaction_id", "amount"})


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a key given twice is refused (``json`` would keep the last)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _integer(digits: str) -> int | Decimal:
    """``parse_int``: a JSON integer; one too long for ``int`` (Python refuses over 4,300
    digits) is a ``Decimal``, so it is refused as out of range, not as invalid JSON."""
    return int(digits) if len(digits) <= 100 else Decimal(digits)


_DECODER = json.JSONDecoder(
    parse_float=Decimal,
    parse_int=_integer,
    parse_constant=_reject_constant,
    object_pairs_hook=_no_duplicates,
)
"""One decoder for every body: ``json.loads`` with options builds a new one per call."""


def _quoted(key: str) -> str:
    """A field name as shown in an error message: JSON-quoted, ASCII, at most 64 chars."""
    return json.dumps(key[:64])


def _surrogate_in(value: Any) -> bool:
    """Whether a lone surrogate (a ``\\ud800`` escape) hides in ``value``, at any depth."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE_RE.search(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def json_object(body: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    """The request body as a JSON object of ``allowed`` fields, each given once, with no
    lone surrogate; numbers with a fraction become ``Decimal``."""
    if not body.strip():
        raise invalid_request("request body must be a JSON object")
    try:
        text = body.decode("utf-8")
        value = _DECODER.decode(text)
    except _DuplicateKey as e:
        raise parameter_duplicated(f"field {_quoted(e.key)} is given more than once") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid_request("request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise invalid_request("request body must be a JSON object")
    if "\\u" in text:  # UTF-8 decoding refuses encoded surrogates: only an escape makes one
        for key, item in value.items():
            if _surrogate_in(key) or _surrogate_in(item):
                raise invalid_request(
                    f"{_quoted(key)} holds an invalid unicode escape (lone surrogate)"
                )
    for key in value:
        if key not in allowed:
            raise parameter_unknown(f"unknown field {_quoted(key)}")
    return value


_JSON_ONLY = [b"application/json"]


def body_headers(headers: Any) -> None:
    """A body must be sent uncompressed (``Content-Encoding`` none or ``identity``: a
    compressed one is not JSON to us, and inflating it is work a client could abuse) and as
    ``application/json`` (``content_type``); else 415."""
    encoding = headers.getRawHeaders(b"content-encoding")
    if encoding is not None and [e.strip().lower() for e in encoding] != [b"identity"]:
        raise unsupported_media_type("Content-Encoding is not supported: send the body as is")
    content_type(headers.getRawHeaders(b"content-type"))


def content_type(values: list[bytes] | None) -> None:
    """A body must be sent as ``application/json`` (charset, if given, utf-8); else 415."""
    if values == _JSON_ONLY:
        return  # what clients send, checked without taking it apart
    media, _, params = (values[0] if values and len(values) == 1 else b"").partition(b";")
    if media.strip().lower() != b"application/json":
        raise unsupported_media_type("Content-Type must be application/json")
    for param in params.split(b";"):
        attribute, _, setting = param.partition(b"=")
        if attribute.strip().lower() == b"charset":
            if setting.strip().strip(b'"').lower() not in (b"utf-8", b"utf8"):
                raise unsupported_media_type("Content-Type charset must be utf-8")


def _string(obj: dict[str, Any], field: str, *, required: bool = True) -> str | None:
    value = obj.get(field)
    if value is None:
        if required:
            raise invalid_request(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise invalid_request(f"{field} must be a string")
    return value


def _checked(rule: Callable[..., str], *args: Any, **kwargs: Any) -> str:
    """``rule`` of ``shillings_proto.fields`` applied; its ``FieldError`` a 400."""
    try:
        return rule(*args, **kwargs)
    except FieldError as e:
        raise invalid_request(str(e)) from None


@functools.lru_cache(maxsize=4096)
def _email(value: str, field: str) -> str:
    """``fields.email`` checked (``_checked``), remembered: a client names the same few
    addresses again and again, and the canonical form is Unicode normalisation, case
    folding and five scans. A refusal is not remembered (it raises each time)."""
    return _checked(fields.email, value, field)


def _name(obj: dict[str, Any], field: str, *, required: bool = True) -> str:
    value = _string(obj, field, required=required) or ""
    return _checked(fields.name, value, field, required=required)


def _password(value: str, field: str = "password") -> str:
    if "\x00" in value:
        raise invalid_request(f"{field} must not contain NUL characters")
    if len(value.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise invalid_request(f"{field} must be at most {MAX_PASSWORD_BYTES} bytes")
    return value


def signup(body: bytes) -> pb.SignupRequest:
    obj = json_object(body, SIGNUP_FIELDS)
    first_name = _name(obj, "first_name")
    middle_name = _name(obj, "middle_name", required=False)
    last_name = _name(obj, "last_name")
    address = _email(_string(obj, "email") or "", "email")
    phone = _checked(fields.phone, _string(obj, "phone") or "")
    password = _checked(fields.new_password, _password(_string(obj, "password") or ""))
    return pb.SignupRequest(
        first_name=first_name,
        middle_name=middle_name,
        last_name=last_name,
        email=address,
        phone=phone,
        password=password,
    )


def login(body: bytes) -> pb.LoginRequest:
    obj = json_object(body, LOGIN_FIELDS)
    address = _checked(fields.login_email, _string(obj, "email") or "")
    password = _password(_string(obj, "password") or "")
    if not password:
        raise invalid_request("password is required")
    return pb.LoginRequest(email=address, password=password)


def amount(obj: dict[str, Any]) -> int:
    """The ``amount`` field in cents (400 ``invalid_amount`` when malformed or out of range)."""
    if "amount" not in obj or obj["amount"] is None:
        raise invalid_amount("amount is required")
    try:
        return parse_amount(obj["amount"])
    except AmountError as e:
        raise invalid_amount(str(e)) from None


def pay(body: bytes) -> pb.PayRequest:
    obj = json_object(body, PAY_FIELDS)
    receiver = _email(_string(obj, "receiver_email") or "", "receiver_email")
    return pb.PayRequest(receiver_email=receiver, amount=amount(obj))


def topup(body: bytes) -> pb.TopupRequest:
    return pb.TopupRequest(amount=amount(json_object(body, TOPUP_FIELDS)))


def hold(body: bytes) -> pb.HoldRequest:
    """``receiver_email``, ``amount`` and ``expires_in`` (whole seconds, optional)."""
    obj = json_object(body, HOLD_FIELDS)
    receiver = _email(_string(obj, "receiver_email") or "", "receiver_email")
    expires_in = obj.get("expires_in")
    if expires_in is not None and (
        not isinstance(expires_in, int)
        or isinstance(expires_in, bool)
        or not 1 <= expires_in <= MAX_EXPIRES_IN
    ):
        raise invalid_request(
            f"expires_in must be a positive whole number of seconds, at most {MAX_EXPIRES_IN}"
        )
    return pb.HoldRequest(receiver_email=receiver, amount=amount(obj), expires_in=expires_in or 0)


def _hold_id(value: str) -> str:
    """A hold id from the path in its canonical form (``fields.public_id``: either case),
    else no hold has it (404)."""
    canonical = fields.public_id(value)
    if canonical is None:
        raise ApiError(404, "hold_not_found", "no such hold of which you are the receiver")
    return canonical


def capture(body: bytes, hold_id: str) -> pb.CaptureRequest:
    """An optional ``amount`` (default: all of the hold); an empty body is allowed."""
    obj = json_object(body, CAPTURE_FIELDS) if body.strip() else {}
    cents = amount(obj) if obj.get("amount") is not None else 0
    return pb.CaptureRequest(hold_id=_hold_id(hold_id), amount=cents)


def void(body: bytes, hold_id: str) -> pb.VoidRequest:
    """No fields; an empty body or ``{}``."""
    if body.strip():
        json_object(body, frozenset())
    return pb.VoidRequest(hold_id=_hold_id(hold_id))


def holds(args: dict[bytes, list[bytes]]) -> pb.HoldsRequest:
    """``role`` (payer/receiver, default both), ``state``, ``limit`` and ``cursor``."""
    listing = page(args)
    role = _single(args, b"role") or ""
    if role and role not in HOLD_ROLES:
        raise invalid_request("role must be payer or receiver")
    state = _single(args, b"state") or ""
    if state and state not in HOLD_STATES:
        raise invalid_request(f"state must be one of {', '.join(HOLD_STATES)}")
    return pb.HoldsRequest(role=role, state=state, limit=listing.limit, cursor=listing.cursor)


def refund(body: bytes) -> pb.RefundRequest:
    """``transaction_id`` (a string, required; 404 ``transaction_not_found`` when it is not
    a UUID, as no transaction has that id) and ``amount`` (optional: absent or null asks
    for all that remains refundable)."""
    obj = json_object(body, REFUND_FIELDS)
    given = _string(obj, "transaction_id") or ""
    if not given:
        raise invalid_request("transaction_id is required")
    transaction_id = fields.public_id(given)
    if transaction_id is None:
        raise transaction_not_found()
    cents = amount(obj) if obj.get("amount") is not None else 0
    return pb.RefundRequest(transaction_id=transaction_id, amount=cents)


def page(args: dict[bytes, list[bytes]]) -> pb.TransactionsRequest:
    """``limit`` (1-100, default 20) and ``cursor`` from the query string."""
    limit, cursor = _limit_and_cursor(args)
    return pb.TransactionsRequest(limit=limit, cursor=cursor)


def transactions(args: dict[bytes, list[bytes]]) -> pb.TransactionsRequest:
    """``page`` and an optional ``hold_id`` (a UUID, either case: only that hold's
    capture)."""
    listing = page(args)
    given = _single(args, b"hold_id")
    if given is None:
        return listing
    hold_id = fields.public_id(given)
    if hold_id is None:
        raise invalid_request("hold_id must be a hold's id (a UUID)")
    listing.hold_id = hold_id
    return listing


def events(args: dict[bytes, list[bytes]]) -> pb.EventsRequest:
    """``type`` (checked by the app server against the event types), ``limit``, ``cursor``."""
    limit, cursor = _limit_and_cursor(args)
    return pb.EventsRequest(type=_single(args, b"type") or "", limit=limit, cursor=cursor)


def deliveries(args: dict[bytes, list[bytes]], webhook_id: str) -> pb.DeliveriesRequest:
    """One endpoint's delivery log: ``limit`` and ``cursor``."""
    limit, cursor = _limit_and_cursor(args)
    return pb.DeliveriesRequest(webhook_id=webhook_id, limit=limit, cursor=cursor)


def webhook(body: bytes) -> pb.WebhookCreateRequest:
    """``url`` (its rules are the app server's: it resolves the host) and ``event_types``,
    an optional list of strings."""
    obj = json_object(body, WEBHOOK_FIELDS)
    types = obj.get("event_types")
    if types is None:
        types = []
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise invalid_request("event_types must be a list of strings")
    return pb.WebhookCreateRequest(url=_string(obj, "url", required=False) or "", event_types=types)


def _limit_and_cursor(args: dict[bytes, list[bytes]]) -> tuple[int, str]:
    limit = fields.DEFAULT_PAGE
    raw_limit = _single(args, b"limit")
    if raw_limit is not None:
        if not raw_limit.isdigit() or len(raw_limit) > 3:
            raise invalid_request(f"limit must be an integer from 1 to {fields.MAX_PAGE}")
        limit = int(raw_limit)
        if not 1 <= limit <= fields.MAX_PAGE:
            raise invalid_request(f"limit must be an integer from 1 to {fields.MAX_PAGE}")
    cursor = _single(args, b"cursor") or ""
    if cursor and not _CURSOR_RE.match(cursor):
        raise invalid_request("cursor is not valid")
    return limit, cursor


def _single(args: dict[bytes, list[bytes]], name: bytes) -> str | None:
    values = args.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise invalid_request(f"{name.decode()} must be given at most once")
    try:
        return values[0].decode("ascii")
    except UnicodeDecodeError:
        raise invalid_request(f"{name.decode()} is not valid") from None


def idempotency_key(values: list[bytes] | None) -> str:
    """The ``Idempotency-Key`` header: "" when absent, else 1-255 printable ASCII characters."""
    if values is None:
        return ""
    if len(values) != 1:
        raise invalid_request("Idempotency-Key must be given at most once")
    try:
        key = values[0].decode("ascii")
    except UnicodeDecodeError:
        key = ""
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise invalid_request(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return key
