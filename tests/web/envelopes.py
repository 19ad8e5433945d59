"""What the HTTP edge tests share: the error envelope every failure answers with
(``assert_envelope``) and tokens signed with the test secret."""

from __future__ import annotations

import time

import jwt

from tests.web.conftest import TEST_SECRET

JSON = {"Content-Type": "application/json"}


def assert_envelope(answer, code, reason=None):
    assert answer.code == code
    assert answer.header("Content-Type") == "application/json"
    body = answer.body
    assert body["status"]["code"] == code
    assert isinstance(body["status"]["message"], str) and body["status"]["message"]
    if reason is not None:
        assert body["status"]["reason"] == reason
    assert b"Traceback" not in answer.raw
    return body


def token(**over):
    now = int(time.time())
    claims = {"sub": "1", "email": "a@b.co", "iat": now, "exp": now + 600, "jti": "j1"}
    claims.update(over)
    return jwt.encode(claims, TEST_SECRET, algorithm="HS256")
