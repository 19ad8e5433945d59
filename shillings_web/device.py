"""Device cookies (OWASP "Slow Down Online Guessing Attacks with Device Cookies").

A successful login gives the client a cookie that proves it once knew that email's
password: name ``dev_<16 hex>`` (per email, so several accounts on one browser keep
theirs), value ``<nonce>.<signature>``, HMAC-SHA256 over the email and the nonce with a key
derived from the JWT secret. A login that presents a valid device cookie for its email is
limited per device (the nonce), not by the email's lockout, so an attacker who locks an
email out locks out only clients that never logged in to it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any

COOKIE_PATH = "/v1/login"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class DeviceCookies:
    """Issues and verifies device cookies with a key derived from ``secret``."""

    def __init__(self, secret: str, max_age: int, secure: bool = False) -> None:
        self._key = hmac.new(
            secret.encode("utf-8"), b"shillings device cookie v1", hashlib.sha256
        ).digest()
        self._max_age = max_age
        self._secure = secure

    def _mac(self, *parts: str) -> bytes:
        message = b"\0".join(p.encode("utf-8", "surrogatepass") for p in parts)
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def name(self, email: str) -> str:
        """The cookie name for ``email``: unlinkable to the email without the key."""
        return "dev_" + self._mac("name", email)[:8].hex()

    def verify(self, request: Any, email: str) -> str | None:
        """The nonce of a valid device cookie for ``email`` in ``request``, else None."""
        raw = request.getCookie(self.name(email).encode("ascii"))
        if not raw:
            return None
        try:
            nonce, signature = raw.decode("ascii").split(".", 1)
        except (UnicodeDecodeError, ValueError):
            return None
        if not nonce or not hmac.compare_digest(signature, _b64(self._mac("dev", email, nonce))):
            return None
        return nonce

    def issue(self, request: Any, email: str) -> None:
        """Add a fresh device cookie for ``email`` to the response."""
        nonce = secrets.token_urlsafe(16)
        value = f"{nonce}.{_b64(self._mac('dev', email, nonce))}"
        parts = [
            f"{self.name(email)}={value}",
            f"Max-Age={self._max_age}",
            f"Path={COOKIE_PATH}",
            "HttpOnly",
            "SameSite=Strict",
        ]
        if self._secure:
            parts.append("Secure")
        request.responseHeaders.addRawHeader(b"Set-Cookie", "; ".join(parts).encode("ascii"))
