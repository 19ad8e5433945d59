"""Signup, login, logout, account over real HTTP against a real app server and Redis."""

from __future__ import annotations

import time

import jwt
import pytest_twisted
from twisted.internet import defer

from shillings_web.cache import TOKEN_KEY
from tests.web.conftest import PASSWORD, login, signup


def assert_user(user, email):
    assert set(user) == {
        "user_id",
        "first_name",
        "middle_name",
        "last_name",
        "email",
        "phone",
        "balance",
        "held",
        "available",
        "created_at",
        "updated_at",
    }
    assert user["email"] == email
    assert user["available"] == user["balance"] and user["held"] == "0.00"
    assert isinstance(user["user_id"], int)
    assert user["created_at"].endswith("Z")


@pytest_twisted.ensureDeferred
async def test_signup_success_and_shape(web):
    answer = await signup(
        web.client,
        "Ada@Example.com",
        first_name="Ada",
        middle_name="King",
        last_name="Lovelace",
        phone="+44 20 7946-0958",
    )
    assert answer.body["status"] == {"code": 201, "message": "Created"}
    user = answer.body["user"]
    assert_user(user, "ada@example.com")
    assert (user["first_name"], user["middle_name"], user["last_name"]) == (
        "Ada",
        "King",
        "Lovelace",
    )
    assert user["phone"] == "+442079460958"
    assert user["balance"] == "0.00"
    other = await signup(web.client, "bob@example.com")
    assert other.body["user"]["middle_name"] == ""


@pytest_twisted.ensureDeferred
async def test_signup_errors(web):
    await signup(web.client, "taken@example.com")
    answer = await web.client.post(
        "/v1/signup",
        {
            "first_name": "T",
            "last_name": "U",
            "email": "TAKEN@example.com",
            "phone": "5550001111",
            "password": PASSWORD,
        },
    )
    assert (answer.code, answer.reason) == (409, "email_taken")
    base = {
        "first_name": "T",
        "last_name": "U",
        "email": "new@example.com",
        "phone": "5550001111",
        "password": PASSWORD,
    }
    for change, field in (
        ({"email": "nope"}, "email"),
        ({"phone": "12ab"}, "phone"),
        ({"password": "short"}, "password"),
        ({"first_name": "x" * 65}, "first_name"),
        ({"last_name": None}, "last_name"),
        ({"middle_name": 3}, "middle_name"),
    ):
        answer = await web.client.post("/v1/signup", {**base, **change})
        assert (answer.code, answer.reason) == (400, "invalid_request")
        assert field in answer.body["status"]["message"]


@pytest_twisted.ensureDeferred
async def test_login_sets_cookie_and_returns_token(web):
    await signup(web.client, "carol@example.com")
    answer = await web.client.post(
        "/v1/login", {"email": "Carol@Example.com", "password": PASSWORD}
    )
    assert answer.code == 200
    body = answer.body
    assert body["token_type"] == "Bearer"
    assert_user(body["user"], "carol@example.com")
    claims = jwt.decode(body["token"], web.config.jwt_secret, algorithms=["HS256"])
    assert claims["sub"] == str(body["user"]["user_id"])
    assert claims["email"] == "carol@example.com"
    assert {"iat", "exp", "jti"} <= set(claims)
    cookie = answer.header("Set-Cookie")
    parts = [p.strip() for p in cookie.split(";")]
    assert parts[0] == f"token={body['token']}"
    attributes = {p.split("=")[0].lower(): p for p in parts[1:]}
    assert "httponly" in attributes and "secure" not in attributes
    assert attributes["samesite"] == "SameSite=Lax"
    assert attributes["path"] == "Path=/"
    max_age = int(attributes["max-age"].split("=")[1])
    assert 3590 <= max_age <= 3600


@pytest_twisted.ensureDeferred
async def test_secure_cookie_when_configured(web_with):
    web = await web_with(cookie_secure=True)
    await signup(web.client, "dave@example.com")
    answer = await web.client.post("/v1/login", {"email": "dave@example.com", "password": PASSWORD})
    assert answer.code == 200
    assert "Secure" in [p.strip() for p in answer.header("Set-Cookie").split(";")]


@pytest_twisted.ensureDeferred
async def test_login_failures_look_the_same(web):
    await signup(web.client, "erin@example.com")
    wrong = await web.client.post("/v1/login", {"email": "erin@example.com", "password": "x" * 9})
    unknown = await web.client.post("/v1/login", {"email": "nobody@example.com", "password": "x"})
    for answer in (wrong, unknown):
        assert (answer.code, answer.reason) == (401, "invalid_credentials")
        assert answer.header("Set-Cookie") is None
    assert wrong.body == unknown.body
    answer = await web.client.post("/v1/login", {"email": "erin@example.com"})
    assert (answer.code, answer.reason) == (400, "invalid_request")


@pytest_twisted.ensureDeferred
async def test_account_by_bearer_and_by_cookie(web):
    await signup(web.client, "fay@example.com")
    token = await login(web.client, "fay@example.com")
    by_bearer = await web.client.get("/v1/account", token=token)
    by_cookie = await web.client.get("/v1/account", cookie=token)
    assert by_bearer.code == by_cookie.code == 200
    assert by_bearer.body == by_cookie.body
    assert_user(by_bearer.body["user"], "fay@example.com")
    assert by_bearer.body["user"]["balance"] == "0.00"


@pytest_twisted.ensureDeferred
async def test_cache_ttl_is_the_tokens_remaining_life(web):
    await signup(web.client, "gus@example.com")
    token = await login(web.client, "gus@example.com")
    claims = jwt.decode(token, web.config.jwt_secret, algorithms=["HS256"])
    key = TOKEN_KEY.format(claims["jti"])
    assert await web.server.redis.execute("exists", key) == 0
    first = await web.client.get("/v1/account", token=token)
    assert first.code == 200
    ttl = int(await web.server.redis.execute("ttl", key))
    remaining = claims["exp"] - time.time()
    assert remaining - 5 <= ttl <= remaining + 1
    assert ttl > 3500
    # The second read is served from that entry and is identical.
    second = await web.client.get("/v1/account", token=token)
    assert second.raw == first.raw


@pytest_twisted.ensureDeferred
async def test_logout_revokes_the_token_even_when_cached(web):
    await signup(web.client, "hal@example.com")
    token = await login(web.client, "hal@example.com")
    other = await login(web.client, "hal@example.com")
    assert (await web.client.get("/v1/account", token=token)).code == 200  # now cached
    answer = await web.client.post("/v1/logout", cookie=token)
    assert answer.code == 200
    cookie = answer.header("Set-Cookie")
    assert cookie.startswith("token=;") and "Max-Age=0" in cookie
    for method, path in (("GET", "/v1/account"), ("GET", "/v1/transactions")):
        answer = await web.client.request(method, path, token=token)
        assert (answer.code, answer.reason) == (401, "unauthenticated")
    answer = await web.client.post("/v1/topup", {"amount": 1}, token=token)
    assert (answer.code, answer.reason) == (401, "unauthenticated")
    answer = await web.client.post("/v1/logout", token=token)
    assert (answer.code, answer.reason) == (401, "unauthenticated")
    # Another session of the same user is unaffected.
    assert (await web.client.get("/v1/account", token=other)).code == 200


@pytest_twisted.ensureDeferred
async def test_expired_and_forged_tokens_for_a_real_user(web):
    answer = await signup(web.client, "ida@example.com")
    user_id = answer.body["user"]["user_id"]
    now = int(time.time())
    secret = web.config.jwt_secret
    claims = {"sub": str(user_id), "email": "ida@example.com", "jti": "forged-1"}
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, secret)
    forged = jwt.encode({**claims, "iat": now, "exp": now + 600}, "not-the-secret" * 3)
    for token in (expired, forged):
        answer = await web.client.get("/v1/account", token=token)
        assert (answer.code, answer.reason) == (401, "unauthenticated")
    # A correctly signed token for a user that does not exist is refused by the app server.
    ghost = jwt.encode({**claims, "sub": str(user_id + 1000), "iat": now, "exp": now + 600}, secret)
    answer = await web.client.get("/v1/account", token=ghost)
    assert (answer.code, answer.reason) == (401, "unauthenticated")


@pytest_twisted.ensureDeferred
async def test_login_rate_limit_per_email_and_per_ip(web_with):
    web = await web_with(login_max_failures=3, login_window=120, trust_proxy=True)
    client = web.client
    await signup(client, "jan@example.com")
    await signup(client, "kim@example.com")

    def from_ip(ip):
        return {"X-Real-IP": ip}

    for _ in range(3):
        answer = await client.post(
            "/v1/login",
            {"email": "jan@example.com", "password": "wrong-pass"},
            headers=from_ip("10.0.0.1"),
        )
        assert (answer.code, answer.reason) == (401, "invalid_credentials")
    # Per email: even the right password, from another IP, is refused for now.
    answer = await client.post(
        "/v1/login",
        {"email": "jan@example.com", "password": PASSWORD},
        headers=from_ip("10.0.0.2"),
    )
    assert (answer.code, answer.reason) == (429, "too_many_attempts")
    assert 100 <= int(answer.header("Retry-After")) <= 120
    # Per IP: 10.0.0.1 is over the limit for any email.
    answer = await client.post(
        "/v1/login",
        {"email": "kim@example.com", "password": PASSWORD},
        headers=from_ip("10.0.0.1"),
    )
    assert (answer.code, answer.reason) == (429, "too_many_attempts")
    # Another email from another IP is fine; a success clears that email's failures.
    for _ in range(2):
        answer = await client.post(
            "/v1/login",
            {"email": "kim@example.com", "password": "wrong-pass"},
            headers=from_ip("10.0.0.3"),
        )
        assert answer.code == 401
    answer = await client.post(
        "/v1/login",
        {"email": "kim@example.com", "password": PASSWORD},
        headers=from_ip("10.0.0.4"),
    )
    assert answer.code == 200
    answer = await client.post(
        "/v1/login",
        {"email": "kim@example.com", "password": "wrong-pass"},
        headers=from_ip("10.0.0.5"),
    )
    assert answer.code == 401


@pytest_twisted.ensureDeferred
async def test_client_ip_header_is_ignored_unless_behind_a_trusted_proxy(web_with):
    """Reached directly (SHILLINGS_TRUST_PROXY unset), a forged X-Real-IP does not spread
    failures over fake addresses: the per-IP limit still counts the real peer."""
    web = await web_with(login_max_failures=3, login_window=120)
    for n in range(3):
        answer = await web.client.post(
            "/v1/login",
            {"email": f"nobody{n}@example.com", "password": "wrong-pass"},
            headers={"X-Real-IP": f"10.9.9.{n}"},
        )
        assert (answer.code, answer.reason) == (401, "invalid_credentials")
    answer = await web.client.post(
        "/v1/login",
        {"email": "someone-else@example.com", "password": "wrong-pass"},
        headers={"X-Real-IP": "10.9.9.200"},
    )
    assert (answer.code, answer.reason) == (429, "too_many_attempts")


@pytest_twisted.ensureDeferred
async def test_a_burst_of_concurrent_guesses_cannot_slip_past_the_limit(web_with):
    """Every attempt reserves a count on its email before the password is checked: of 30
    guesses at one account sent at once, exactly the limit reach the app server; then the
    right password is refused too, while other accounts still log in, concurrently too."""
    web = await web_with(login_max_failures=3, login_window=120, trust_proxy=True)
    await signup(web.client, "burst@example.com")
    await signup(web.client, "calm@example.com")
    guesses = [
        web.client.post(
            "/v1/login",
            {"email": "burst@example.com", "password": f"guess-{n:04d}"},
            headers={"X-Real-IP": f"10.1.0.{n}"},
        )
        for n in range(30)
    ]
    answers = await defer.gatherResults([defer.ensureDeferred(g) for g in guesses])
    codes = sorted(a.code for a in answers)
    assert codes == [401] * 3 + [429] * 27
    right = await web.client.post(
        "/v1/login",
        {"email": "burst@example.com", "password": PASSWORD},
        headers={"X-Real-IP": "10.1.1.1"},
    )
    assert (right.code, right.reason) == (429, "too_many_attempts")
    for _ in range(5):
        other = await web.client.post(
            "/v1/login",
            {"email": "calm@example.com", "password": PASSWORD},
            headers={"X-Real-IP": "10.2.0.1"},
        )
        assert other.code == 200, other.raw
    # Many users behind one address (a NAT) logging in at once are not refused.
    for n in range(8):
        await signup(web.client, f"office{n}@example.com")
    logins = [
        defer.ensureDeferred(
            web.client.post(
                "/v1/login",
                {"email": f"office{n}@example.com", "password": PASSWORD},
                headers={"X-Real-IP": "10.3.0.1"},
            )
        )
        for n in range(8)
    ]
    assert [a.code for a in await defer.gatherResults(logins)] == [200] * 8
