"""The per-process cache of verified tokens: a hit is exactly what verification would
say, except cheaper; expiry is checked on every use; other secrets never hit."""

from __future__ import annotations

import time

import jwt
import pytest

from shillings_web import auth
from shillings_web.auth import verify_token
from shillings_web.errors import ApiError

SECRET = "k" * 64


def token(exp_in: int = 600, secret: str = SECRET, jti: str = "cache-test") -> str:
    now = int(time.time())
    claims = {"sub": "9", "email": "c@d.co", "iat": now, "exp": now + exp_in, "jti": jti}
    return jwt.encode(claims, secret, algorithm="HS256")


def test_second_verification_is_served_from_the_cache(monkeypatch):
    t = token()
    first = verify_token(t, SECRET)
    monkeypatch.setattr(auth, "_verify_signed", lambda *a: pytest.fail("verified again"))
    assert verify_token(t, SECRET) is first


def test_cached_token_is_refused_once_expired():
    t = token(exp_in=100, jti="expiring")
    identity = verify_token(t, SECRET)
    with pytest.raises(ApiError) as e:
        verify_token(t, SECRET, now=identity.expires_at)
    assert (e.value.code, e.value.reason) == (401, "unauthenticated")
    assert (SECRET, t) not in auth._verified


def test_a_token_verified_under_one_secret_is_not_accepted_under_another():
    other = "o" * 64
    t = token(secret=other, jti="other-secret")
    verify_token(t, other)
    with pytest.raises(ApiError):
        verify_token(t, SECRET)


def test_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(auth, "VERIFIED_CACHE_SIZE", 3)
    monkeypatch.setattr(auth, "_verified", {})
    tokens = [token(jti=f"bounded-{n}") for n in range(5)]
    for t in tokens:
        verify_token(t, SECRET)
    assert len(auth._verified) == 3
    assert (SECRET, tokens[0]) not in auth._verified
    assert (SECRET, tokens[-1]) in auth._verified
