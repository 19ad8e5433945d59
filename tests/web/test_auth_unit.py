"""JWT verification: HS256 only, required claims, expiry."""

import base64
import json
import time

import jwt
import pytest

from shillings_web.auth import token_from_request, verify_token
from shillings_web.errors import ApiError

SECRET = "s" * 64


def claims(**over):
    now = int(time.time())
    base = {"sub": "7", "email": "a@b.co", "iat": now, "exp": now + 600, "jti": "abc123"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def test_valid_token():
    identity = verify_token(jwt.encode(claims(), SECRET, algorithm="HS256"), SECRET)
    assert (identity.user_id, identity.token_id, identity.email) == (7, "abc123", "a@b.co")
    assert 590 <= identity.seconds_left() <= 600


def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(), "other-secret-" * 4, algorithm="HS256"),
        jwt.encode(claims(exp=int(time.time()) - 60), SECRET, algorithm="HS256"),
        jwt.encode(claims(sub=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(jti=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(email=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(exp=None), SECRET, algorithm="HS256"),
        jwt.encode(claims(sub="abc"), SECRET, algorithm="HS256"),
        jwt.encode(claims(sub="0"), SECRET, algorithm="HS256"),
        jwt.encode(claims(jti="x" * 65), SECRET, algorithm="HS256"),
        jwt.encode(claims(), SECRET, algorithm="HS512"),
        _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(claims()) + ".",
        "not.a.token",
        "",
        "x" * 5000,
    ],
)
def test_rejected_tokens(token):
    with pytest.raises(ApiError) as e:
        verify_token(token, SECRET)
    assert (e.value.code, e.value.reason) == (401, "unauthenticated")


def test_tampered_payload_rejected():
    token = jwt.encode(claims(), SECRET, algorithm="HS256")
    header, _, signature = token.split(".")
    forged = header + "." + _b64(claims(sub="8")) + "." + signature
    with pytest.raises(ApiError):
        verify_token(forged, SECRET)


class _Headers:
    """A request with only an Authorization header (``getHeader``)."""

    def __init__(self, value: bytes) -> None:
        self._value = value

    def getHeader(self, name: bytes) -> bytes | None:
        return self._value if name == b"authorization" else None


@pytest.mark.parametrize(
    "header",
    [b"Bearer abc.def", b"bearer abc.def", b"BEARER   abc.def  ", b"Bearer abc.def"],
)
def test_a_bearer_header_gives_its_token_each_time(header):
    for _ in range(2):  # the second time from the remembered header
        assert token_from_request(_Headers(header)) == "abc.def"


@pytest.mark.parametrize("header", [b"Basic abc", b"Bearer", b"Bearer a b", b"Bearer \xffx"])
def test_a_malformed_authorization_header_is_refused_each_time(header):
    for _ in range(2):  # a refusal is not remembered as a token
        with pytest.raises(ApiError) as e:
            token_from_request(_Headers(header))
        assert e.value.code == 401
