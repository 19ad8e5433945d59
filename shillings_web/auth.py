"""Verification of the JWT a client presents in the ``token`` cookie or a Bearer header."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from typing import Any

import jwt

from shillings_web.errors import unauthenticated

COOKIE_NAME = b"token"
MAX_TOKEN_LENGTH = 4096
_REQUIRED_CLAIMS = ["sub", "email", "iat", "exp", "jti"]
_SUB_RE = re.compile(r"^[1-9][0-9]{0,19}$")
_BEARER_RE = re.compile(rb"^[Bb][Ee][Aa][Rr][Ee][Rr] +([\x21-\x7e]+) *$")
VERIFIED_CACHE_SIZE = 8192
"""Tokens whose signature and claims were verified, kept per process (oldest dropped)."""
_verified: dict[tuple[str, str], Identity] = {}


@dataclass(frozen=True)
class Identity:
    """The caller, as a verified token says: user id, token id (jti), email and expiry."""

    user_id: int
    token_id: str
    email: str
    expires_at: int

    def seconds_left(self, now: float | None = None) -> int:
        """Whole seconds until the token expires (at least 1)."""
        now = time.time() if now is None else now
        return max(1, int(self.expires_at - now))


def token_from_request(request: Any) -> str | None:
    """The Bearer token if an Authorization header is present, else the ``token`` cookie."""
    header = request.getHeader(b"authorization")
    if header is not None:
        return _bearer(header.encode("latin-1") if isinstance(header, str) else header)
    cookie = request.getCookie(COOKIE_NAME)
    if cookie:
        try:
            return cookie.decode("ascii")
        except UnicodeDecodeError:
            raise unauthenticated("malformed token") from None
    return None


@functools.lru_cache(maxsize=VERIFIED_CACHE_SIZE)
def _bearer(header: bytes) -> str:
    """The token of an Authorization header, remembered by the header's bytes (a client
    sends the same one with every request; the pattern scans every character). A malformed
    header raises each time (not remembered)."""
    match = _BEARER_RE.match(header)
    if match is None:
        raise unauthenticated("Authorization header must be 'Bearer <token>'")
    return match.group(1).decode("ascii")


def verify_token(token: str, secret: str, now: float | None = None) -> Identity:
    """Check signature (HS256 only), expiry and claims; raise 401 ``unauthenticated``.

    A token that passed once is remembered (keyed by the exact token and secret), so a
    client's next requests cost a dict lookup and an expiry check instead of a base64,
    JSON and HMAC round; the expiry is checked on every use, as PyJWT does.
    """
    now = time.time() if now is None else now
    key = (secret, token)
    identity = _verified.get(key)
    if identity is not None:
        if identity.expires_at > now:
            return identity
        del _verified[key]
        raise unauthenticated("token expired")
    identity = _verify_signed(token, secret)
    if len(_verified) >= VERIFIED_CACHE_SIZE:
        del _verified[next(iter(_verified))]
    _verified[key] = identity
    return identity


def _verify_signed(token: str, secret: str) -> Identity:
    """The full check: signature, expiry, claims."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise unauthenticated("malformed token")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": _REQUIRED_CLAIMS, "verify_iat": False},
        )
    except jwt.ExpiredSignatureError:
        raise unauthenticated("token expired") from None
    except jwt.InvalidTokenError:
        raise unauthenticated("invalid token") from None
    sub, jti, email, exp = claims["sub"], claims["jti"], claims["email"], claims["exp"]
    if (
        not isinstance(sub, str)
        or not _SUB_RE.match(sub)
        or not isinstance(jti, str)
        or not 1 <= len(jti) <= 64
        or not isinstance(email, str)
        or isinstance(exp, bool)
        or not isinstance(exp, int | float)
        or int(sub) >= 2**64
    ):
        raise unauthenticated("invalid token")
    return Identity(user_id=int(sub), token_id=jti, email=email, expires_at=int(exp))


def authenticate(request: Any, secret: str) -> Identity:
    """The verified identity of the caller, or 401 ``unauthenticated``."""
    token = token_from_request(request)
    if not token:
        raise unauthenticated()
    return verify_token(token, secret)
