"""Scenario 5, hostile tokens: every forged, expired, early, revoked or orphaned token and
every garbage cookie gets 401 `unauthenticated` on every authenticated endpoint, and
moves no money."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shillings_web.cache import gen_key
from tests.reliability.api import User, cached, make_user, money
from tests.reliability.conftest import Shared
from tests.reliability.hostile import Raw, check_envelope
from tests.reliability.report import COLLECTOR
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "5. Hostile tokens"
COLLECTOR.describe(SCENARIO, __doc__)
ENDPOINTS = [
    ("GET", "/v1/account", None),
    ("GET", "/v1/transactions", None),
    ("POST", "/v1/topup", {"amount": "5.00"}),
    ("POST", "/v1/pay", {"receiver_email": "tokens-receiver@example.com", "amount": "5.00"}),
    ("POST", "/v1/logout", None),
]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_jwt(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    """A JWT assembled by hand: any header, HMAC-SHA256 with ``key`` or no signature."""
    signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if key is None:
        return signing + "."
    return signing + "." + _b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())


@pytest.fixture(scope="module")
def victim(shared: Shared) -> Iterator[tuple[User, str]]:
    user = make_user(shared.stack.port, "tokens-victim@example.com")
    make_user(shared.stack.port, "tokens-receiver@example.com")
    client = Client(shared.stack.port)
    assert money(client, shared.ledger, shared.stats, user, 10_000).status == 200
    client.close()
    secret = (shared.stack.var / "jwt_secret").read_text().strip()
    yield user, secret


def _claims(user: User, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(user.user_id),
        "email": user.email,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def hostile_tokens(user: User, secret: str) -> dict[str, str]:
    """Name -> token; none of them may be accepted."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    valid = user.token
    head, payload, signature = valid.split(".")
    other = json.loads(base64.urlsafe_b64decode(payload + "==="))
    other["sub"] = str(int(other["sub"]) + 1)
    swapped = _b64(json.dumps(other).encode())
    tokens = {
        "alg none": _raw_jwt({"alg": "none", "typ": "JWT"}, _claims(user), None),
        "alg None": _raw_jwt({"alg": "None", "typ": "JWT"}, _claims(user), None),
        "alg none with a signature": _raw_jwt({"alg": "none"}, _claims(user), secret.encode())[:-1]
        + "x",
        "HS256 with another key": jwt.encode(_claims(user), "k" * 64, algorithm="HS256"),
        "HS256 with an empty key": _raw_jwt({"alg": "HS256", "typ": "JWT"}, _claims(user), b""),
        "HS512 with the right key": jwt.encode(_claims(user), secret, algorithm="HS512"),
        "RS256 with a fresh RSA key": jwt.encode(_claims(user), key, algorithm="RS256"),
        "RS256/HS256 confusion (public key as HMAC secret)": _raw_jwt(
            {"alg": "HS256", "typ": "JWT"}, _claims(user), public_pem
        ),
        "RS256 header, HS256 signature with the right key": _raw_jwt(
            {"alg": "RS256", "typ": "JWT"}, _claims(user), secret.encode()
        ),
        "expired": jwt.encode(_claims(user, iat=now - 7200, exp=now - 3600), secret, "HS256"),
        "expired a second ago": jwt.encode(_claims(user, exp=now - 1), secret, "HS256"),
        "not yet valid (nbf in an hour)": jwt.encode(
            _claims(user, nbf=now + 3600), secret, "HS256"
        ),
        "no exp": jwt.encode(_claims(user, exp=None), secret, "HS256"),
        "no jti": jwt.encode(_claims(user, jti=None), secret, "HS256"),
        "no sub": jwt.encode(_claims(user, sub=None), secret, "HS256"),
        "sub not a number": jwt.encode(_claims(user, sub="1 OR 1=1"), secret, "HS256"),
        "sub as an integer": jwt.encode(_claims(user, sub=user.user_id), secret, "HS256"),
        "sub of a user that never existed": jwt.encode(
            _claims(user, sub="987654321"), secret, "HS256"
        ),
        "payload swapped to another user, signature kept": f"{head}.{swapped}.{signature}",
        "signature of another token": f"{head}.{payload}.{_b64(b'x' * 32)}",
        "signature stripped": f"{head}.{payload}.",
        "truncated": valid[: len(valid) // 2],
        "two dots only": "..",
        "4 KiB of junk": "a" * 5000,
        "SQL in the token": "' OR '1'='1",
    }
    return tokens


def _assert_refused(raw: Raw, headers: dict[str, str], what: str) -> int:
    tried = 0
    for method, path, body in ENDPOINTS:
        payload = json.dumps(body).encode() if body is not None else None
        all_headers = {"Content-Type": "application/json", **headers}
        if path in ("/v1/topup", "/v1/pay"):
            all_headers["Idempotency-Key"] = uuid.uuid4().hex
        status, answer, _ = raw.call(method, path, payload, all_headers)
        document = check_envelope(status, answer)
        assert (status, document["status"]["reason"]) == (401, "unauthenticated"), (what, path)
        tried += 1
    return tried


def test_every_hostile_token_is_refused(shared: Shared, victim: tuple[User, str]) -> None:
    user, secret = victim
    raw = Raw(shared.stack.port)
    tried = 0
    balance_before = shared.stack.query(
        "SELECT balance FROM users WHERE user_id = %s", (user.user_id,)
    )
    for name, token in hostile_tokens(user, secret).items():
        tried += _assert_refused(raw, {"Authorization": f"Bearer {token}"}, name)
        if all(0x21 <= ord(c) <= 0x7E and c not in ';,"\\' for c in token):
            tried += _assert_refused(raw, {"Cookie": f"token={token}"}, f"cookie: {name}")
    for cookie in [
        "token=",
        "token=garbage",
        "token=%00%ff",
        "token=" + "x" * 5000,
        'token="quoted"',
        "token=a.b.c; token=d.e.f",
        "Token=" + user.token[:-2],
    ]:
        tried += _assert_refused(raw, {"Cookie": cookie}, f"cookie {cookie[:30]}")
    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer  ",
        "bearer" + user.token,
        f"Token {user.token}",
        f"Bearer {user.token} extra",
    ]:
        tried += _assert_refused(raw, {"Authorization": header}, f"authorization {header[:20]}")
    raw.close()
    assert (
        shared.stack.query("SELECT balance FROM users WHERE user_id = %s", (user.user_id,))
        == balance_before
    )
    COLLECTOR.count(SCENARIO, "fuzz_cases", tried)
    shared.check(SCENARIO)


def test_revoked_and_deleted_users_tokens_are_refused(shared: Shared) -> None:
    port = shared.stack.port
    revoked = make_user(port, "tokens-revoked@example.com")
    client = Client(port, revoked.token)
    assert client.call("GET", "/v1/account")[0] == 200  # cached in Redis
    assert client.call("POST", "/v1/logout")[0] == 200
    client.close()
    raw = Raw(port)
    tried = _assert_refused(raw, {"Authorization": f"Bearer {revoked.token}"}, "revoked")
    tried += _assert_refused(raw, {"Cookie": f"token={revoked.token}"}, "revoked cookie")

    deleted = make_user(port, "tokens-deleted@example.com")
    conn = shared.stack.db()
    with conn.cursor() as cur:
        cur.execute("DELETE FROM credentials WHERE user_id = %s", (deleted.user_id,))
        cur.execute("DELETE FROM users WHERE user_id = %s", (deleted.user_id,))
    conn.close()
    tried += _assert_refused(raw, {"Authorization": f"Bearer {deleted.token}"}, "deleted user")
    raw.close()
    COLLECTOR.count(SCENARIO, "fuzz_cases", tried)
    shared.check(SCENARIO)


def test_token_of_a_deleted_user_whose_profile_was_cached(shared: Shared) -> None:
    """Users are deleted out of band only; the documented procedure is to delete the rows
    and DEL the user's cache generation (docs/ARCHITECTURE.md). Then the token gets 401,
    even though its profile was cached (without the DEL the cache would keep serving it)."""
    port = shared.stack.port
    user = make_user(port, "tokens-deleted-cached@example.com")
    client = Client(port, user.token)
    deadline = time.monotonic() + 20  # no cache fills in the grace after Redis starts empty
    while not cached(shared.stack.redis, user):
        assert time.monotonic() < deadline, "the profile never got cached"
        assert client.call("GET", "/v1/account")[0] == 200
        time.sleep(0.2)
    conn = shared.stack.db()
    with conn.cursor() as cur:
        cur.execute("DELETE FROM credentials WHERE user_id = %s", (user.user_id,))
        cur.execute("DELETE FROM users WHERE user_id = %s", (user.user_id,))
    conn.close()
    served_before_incr = client.call("GET", "/v1/account")[0]
    shared.stack.redis("DEL", gen_key(user.email))
    status, body, _ = client.call("GET", "/v1/account")
    writes = [
        client.call("POST", "/v1/topup", {"amount": "1.00"}, {"Idempotency-Key": uuid.uuid4().hex})[
            0
        ]
    ]
    client.close()
    COLLECTOR.add(SCENARIO, deleted_user_cached_profile_read_before_the_incr=served_before_incr)
    assert (status, body["status"].get("reason")) == (401, "unauthenticated"), body
    assert writes == [401]
    shared.check(SCENARIO)
