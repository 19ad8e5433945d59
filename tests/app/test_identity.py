"""Issue 10 point 8 at the app server, which must not trust its peer: one canonical email
per account (lookalikes are the same account), control and bidi characters refused."""

from __future__ import annotations

import unicodedata

import pytest
import pytest_twisted
from hypothesis import given, settings
from hypothesis import strategies as st

from shillings_proto import fields
from tests import protocol_requests as messages
from tests.app.helpers import PASSWORD, Session, login, signup

LOOKALIKES = [
    ("jos\u00e9@example.com", "jose\u0301@example.com"),  # NFC / NFD
    ("\uff41da@example.com", "ada@example.com"),  # full-width a
    ("\ufb01sh@example.com", "fish@example.com"),  # the fi ligature
    ("x\u03c3@example.com", "X\u03a3@EXAMPLE.COM"),  # sigma, capital sigma
    ("x\u03c3@example.com", "x\u03c2@example.com"),  # sigma, final sigma
]


def _signup_request(email: str, **over: str):
    values = {
        "first_name": "Ada",
        "middle_name": "",
        "last_name": "Lovelace",
        "email": email,
        "phone": "+15551234567",
        "password": PASSWORD,
        **over,
    }
    return messages.signup(**values)


@pytest.mark.parametrize(("first", "second"), LOOKALIKES)
@pytest_twisted.ensureDeferred
async def test_a_lookalike_email_is_the_same_account(client, first, second):
    user = await signup(client, first)
    assert user.email == fields.email_key(first) == fields.email_key(second)
    response = await client.call(_signup_request(second))
    assert (response.status.code, response.status.reason) == (409, "email_taken")
    token = await login(client, second)
    assert token.user.user_id == user.user_id


@pytest_twisted.ensureDeferred
async def test_paying_a_case_variant_reaches_the_account(client):
    receiver = await signup(client, "x\u03c3@example.com")
    payer = await signup(client, "payer-sigma@example.com")
    session = Session(client, payer, await login(client, payer.email))
    assert (await session.topup(500)).status.code == 200
    response = await session.pay("X\u03a3@EXAMPLE.COM", 200)
    assert response.status.code == 200, response.status
    receiving = Session(client, receiver, await login(client, "x\u03c3@example.com"))
    assert await receiving.balance() == 200
    # The final sigma is not a new account either.
    again = await client.call(_signup_request("x\u03c2@example.com"))
    assert again.status.reason == "email_taken"


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\u202e", "\u2067", "\u200e"])
@pytest_twisted.ensureDeferred
async def test_control_and_bidi_characters_are_refused_by_the_app(client, char):
    for over in (
        {"email": f"ev{char}il@example.com"},
        {"email": "ok@example.com", "first_name": f"Ad{char}a"},
        {"email": "ok@example.com", "middle_name": f"K{char}"},
        {"email": "ok@example.com", "last_name": f"Love{char}lace"},
    ):
        request = _signup_request(**over)  # type: ignore[arg-type]
        response = await client.call(request)
        assert (response.status.code, response.status.reason) == (400, "invalid_request"), over
    response = await client.call(messages.login(f"a{char}@example.com", PASSWORD))
    assert (response.status.code, response.status.reason) == (400, "invalid_request")
    payer = await signup(client, f"payer{ord(char)}@example.com")
    session = Session(client, payer, await login(client, payer.email))
    response = await session.pay(f"ev{char}il@example.com", 1)
    assert (response.status.code, response.status.reason) == (400, "invalid_request")


@settings(max_examples=5000, deadline=None)
@given(st.text(max_size=12))
def test_email_key_is_idempotent(value):
    key = fields.email_key(value)
    assert fields.email_key(key) == key
    assert unicodedata.is_normalized("NFKC", key)


def test_email_key_idempotent_for_every_code_point():
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        for value in (chr(cp), f"a{chr(cp)}b", f" {chr(cp)} "):
            key = fields.email_key(value)
            assert fields.email_key(key) == key, hex(cp)


@settings(max_examples=2000, deadline=None)
@given(st.text(max_size=10), st.sampled_from(["@example.com", "@EXAMPLE.COM"]))
def test_a_valid_email_is_its_own_canonical_form(local, domain):
    try:
        value = fields.email(local + domain)
    except fields.FieldError:
        return
    assert fields.email(value) == value == fields.email_key(value)
    assert not fields.FORBIDDEN_RE.search(value)
