"""JWT issuing (HS256): sub, email, iat, exp, jti."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import jwt


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    expires_at: int


class TokenIssuer:
    """Signs access tokens with the shared secret and a fixed lifetime."""

    def __init__(self, secret: str, ttl: int) -> None:
        self._secret = secret
        self.ttl = ttl

    def issue(self, user_id: int, email: str, now: int) -> IssuedToken:
        token_id = uuid.uuid4().hex
        expires_at = now + self.ttl
        claims = {
            "sub": str(user_id),
            "email": email,
            "iat": now,
            "exp": expires_at,
            "jti": token_id,
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return IssuedToken(token=token, token_id=token_id, expires_at=expires_at)
