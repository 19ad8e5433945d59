"""The response envelope and the errors that end a request with a given status."""

from __future__ import annotations

import functools
import json
import re
from http import HTTPStatus
from typing import Any

REASON_FOR_STATUS = {
    400: "invalid_request",
    401: "unauthenticated",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_attempts",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Ends the request with ``code``, a stable snake_case ``reason`` and a human message."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.headers = headers or {}


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def parameter_unknown(message: str) -> ApiError:
    """A body field the endpoint does not take (Stripe's ``parameter_unknown``)."""
    return ApiError(400, "parameter_unknown", message)


def parameter_duplicated(message: str) -> ApiError:
    """A body field given twice in one JSON object."""
    return ApiError(400, "parameter_duplicated", message)


def unsupported_media_type(message: str) -> ApiError:
    return ApiError(415, "unsupported_media_type", message)


def invalid_amount(message: str) -> ApiError:
    return ApiError(400, "invalid_amount", message)


def transaction_not_found() -> ApiError:
    return ApiError(404, "transaction_not_found", "no such transaction of yours")


def unauthenticated(message: str = "authentication required") -> ApiError:
    return ApiError(401, "unauthenticated", message, {"WWW-Authenticate": "Bearer"})


def unavailable(message: str = "service temporarily unavailable, try again") -> ApiError:
    return ApiError(503, "unavailable", message)


MONEY_PATHS = re.compile(rb"/v1/(pay|topup|refunds|holds(/[^/]+/(capture|void))?)")
"""POSTs that move or reserve money: after a lost answer their outcome is unknown (the same
paths as nginx's ``$shl_unavailable`` map)."""


def unavailable_message(request: Any, why: str, *, no_effect: bool) -> str:
    """A 503's message: its cause and what is known of the outcome. "Unknown" (with the
    advice to retry with the same Idempotency-Key) only for a POST of ``MONEY_PATHS`` that
    may have reached an app server; "no effect" when it surely did not take effect."""
    if no_effect:
        return f"service temporarily unavailable ({why}); the request had no effect: retry"
    if request.method == b"POST" and MONEY_PATHS.fullmatch(request.path):
        return (
            f"service temporarily unavailable ({why}); the outcome is unknown:"
            " retry with the same Idempotency-Key, or check /v1/transactions first"
        )
    return f"service temporarily unavailable ({why}); try again"


@functools.cache
def default_message(code: int) -> str:
    """The standard phrase of an HTTP status, e.g. 200 -> "OK"."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def envelope(
    code: int,
    message: str | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    **body: Any,
) -> dict[str, Any]:
    """``{"status": {"code", "message"[, "reason"][, "request_id"]}, **body}``."""
    status: dict[str, Any] = {"code": code, "message": message or default_message(code)}
    if reason is not None:
        status["reason"] = reason
    if request_id is not None:
        status["request_id"] = request_id
    return {"status": status, **body}


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""One encoder for every answer: ``json.dumps`` with options builds a new one per call."""


def encode_text(document: dict[str, Any]) -> str:
    """Compact JSON text of a response document (or of a part of one)."""
    return _ENCODER.encode(document)


def encode(document: dict[str, Any]) -> bytes:
    """Compact JSON bytes of a response document."""
    return _ENCODER.encode(document).encode("utf-8")


OK_HEAD = encode(envelope(200))[:-1] + b","
"""The start of a 200 answer with fields: ``OK_HEAD + b'"name":value' + b"}"`` is the
``encode(envelope(200, name=value))`` of already encoded fields."""
