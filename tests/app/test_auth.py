"""Signup, login (JWT), profile and revocation through the real protocol."""

from __future__ import annotations

import jwt
import pytest
import pytest_twisted

from tests import protocol_requests as messages
from tests.app.helpers import PASSWORD, login, new_email, new_session, signup, sql
from tests.conftest import TEST_JWT_SECRET

VALID = {
    "first_name": "Grace",
    "middle_name": "Brewster",
    "last_name": "Hopper",
    "phone": "+1 (555) 123-4567",
    "password": PASSWORD,
}


@pytest_twisted.ensureDeferred
async def test_signup_creates_user_with_zero_balance_and_hashed_password(client, app_server):
    email = new_email("Grace.Hopper")
    user = await signup(client, email=email.upper(), **VALID)
    assert user.user_id > 0
    assert user.email == email.lower()
    assert (user.first_name, user.middle_name, user.last_name) == ("Grace", "Brewster", "Hopper")
    assert user.phone == "+15551234567"
    assert user.balance == 0
    assert user.created_at.endswith("Z") and user.created_at == user.updated_at
    [(stored,)] = sql(
        app_server.dsn, "SELECT password FROM credentials WHERE user_id = %s", (user.user_id,)
    )
    assert stored.startswith("$2b$04$") and PASSWORD not in stored


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", ""),
        ("first_name", "x" * 65),
        ("last_name", "  "),
        ("middle_name", "m" * 65),
        ("email", "not-an-email"),
        ("email", ""),
        ("phone", "12ab"),
        ("phone", ""),
        ("password", "short"),
        ("password", "é" * 40),
    ],
)
@pytest_twisted.ensureDeferred
async def test_signup_rejects_invalid_field_naming_it(client, field, value):
    fields = {**VALID, "email": new_email(), field: value}
    response = await client.call(messages.signup(**fields))
    assert response.status.code == 400
    assert response.status.reason == "invalid_request"
    assert field in response.status.message


@pytest_twisted.ensureDeferred
async def test_signup_with_taken_email_is_409_in_any_case(client):
    email = new_email()
    await signup(client, email=email)
    for variant in (email, email.upper()):
        response = await client.call(messages.signup(**VALID, email=variant))
        assert (response.status.code, response.status.reason) == (409, "email_taken")


@pytest_twisted.ensureDeferred
async def test_login_issues_hs256_jwt_with_claims(client, app_server):
    user = await signup(client)
    token = await login(client, user.email.upper())
    claims = jwt.decode(token.token, TEST_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == str(user.user_id)
    assert claims["email"] == user.email
    assert claims["jti"] == token.token_id
    assert claims["exp"] == token.expires_at == claims["iat"] + app_server.config.token_ttl
    assert token.user.user_id == user.user_id
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token.token, "another-secret-of-sufficient-length!!", algorithms=["HS256"])
    [(last_login,)] = sql(
        app_server.dsn, "SELECT last_login FROM credentials WHERE user_id = %s", (user.user_id,)
    )
    assert last_login is not None


@pytest_twisted.ensureDeferred
async def test_each_login_gets_a_distinct_token_id(client):
    user = await signup(client)
    first, second = await login(client, user.email), await login(client, user.email)
    assert first.token_id != second.token_id


@pytest_twisted.ensureDeferred
async def test_wrong_password_and_unknown_email_get_the_same_401(client):
    user = await signup(client)
    wrong = await client.call(messages.login(user.email, PASSWORD + "x"))
    unknown = await client.call(messages.login(new_email("nobody"), PASSWORD))
    too_long = await client.call(messages.login(user.email, "p" * 100))
    for response in (wrong, unknown, too_long):
        assert (response.status.code, response.status.reason) == (401, "invalid_credentials")
        assert response.status.message == wrong.status.message
        assert not response.HasField("login")


@pytest_twisted.ensureDeferred
async def test_login_without_email_or_password_is_400(client):
    for email, password in (("", PASSWORD), ("a@example.com", "")):
        response = await client.call(messages.login(email, password))
        assert (response.status.code, response.status.reason) == (400, "invalid_request")


@pytest_twisted.ensureDeferred
async def test_profile_returns_the_user(client):
    session = await new_session(client)
    response = await session.profile()
    assert response.status.code == 200
    assert response.profile.user == session.user


@pytest_twisted.ensureDeferred
async def test_profile_of_unknown_user_or_without_token_is_401(client):
    session = await new_session(client)
    for user_id, token_id in ((session.user_id + 1000, session.token_id), (session.user_id, "")):
        response = await client.call(messages.profile(user_id, token_id))
        assert (response.status.code, response.status.reason) == (401, "unauthenticated")


@pytest_twisted.ensureDeferred
async def test_revoked_token_is_401_everywhere_other_tokens_still_work(client, app_server):
    session = await new_session(client)
    other = await login(client, session.email)
    response = await client.call(
        messages.revoke(session.user_id, session.token_id, session.login.expires_at)
    )
    assert response.status.code == 200 and response.HasField("revoke")
    [(expires,)] = sql(
        app_server.dsn,
        "SELECT UNIX_TIMESTAMP(expires_at) FROM revoked_tokens WHERE jti = %s",
        (session.token_id,),
    )
    assert int(expires) == session.login.expires_at
    uid, jti = session.user_id, session.token_id
    for request in (
        messages.profile(uid, jti),
        messages.topup(uid, jti, 100),
        messages.pay(uid, jti, new_email(), 100),
        messages.transactions(uid, jti, 10),
        messages.revoke(uid, jti, session.login.expires_at),
    ):
        response = await client.call(request)
        assert (response.status.code, response.status.reason) == (401, "unauthenticated")
    response = await client.call(messages.profile(uid, other.token_id))
    assert response.status.code == 200


@pytest_twisted.ensureDeferred
async def test_revoke_with_bogus_expiry_is_remembered_for_the_token_lifetime(client, app_server):
    session = await new_session(client)
    response = await client.call(messages.revoke(session.user_id, session.token_id, 2**62))
    assert response.status.code == 200
    [(remaining,)] = sql(
        app_server.dsn,
        "SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), expires_at) FROM revoked_tokens"
        " WHERE jti = %s",
        (session.token_id,),
    )
    assert 0 < remaining <= app_server.config.token_ttl
