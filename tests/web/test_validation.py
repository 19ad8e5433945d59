"""Edge validation: every malformed field gets 400 with a message naming it."""

import json

import pytest

from shillings_web import validation
from shillings_web.errors import ApiError

GOOD_SIGNUP = {
    "first_name": "Ada",
    "middle_name": "K",
    "last_name": "Lovelace",
    "email": "Ada@Example.com",
    "phone": "+44 20 7946-0958",
    "password": "correct horse",
}


def body(obj) -> bytes:
    return json.dumps(obj).encode()


def test_signup_normalises():
    s = validation.signup(body(GOOD_SIGNUP))
    assert s.email == "ada@example.com"
    assert s.phone == "+442079460958"
    assert s.middle_name == "K"


def test_signup_middle_name_optional():
    obj = dict(GOOD_SIGNUP)
    del obj["middle_name"]
    assert validation.signup(body(obj)).middle_name == ""
    obj["middle_name"] = None
    assert validation.signup(body(obj)).middle_name == ""


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"first_name": None}, "first_name"),
        ({"first_name": ""}, "first_name"),
        ({"first_name": 5}, "first_name"),
        ({"last_name": "x" * 65}, "last_name"),
        ({"middle_name": "x" * 65}, "middle_name"),
        ({"last_name": "a\nb"}, "last_name"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": ["a@b.c"]}, "email"),
        ({"phone": "12"}, "phone"),
        ({"phone": "phone-number"}, "phone"),
        ({"password": "short"}, "password"),
        ({"password": "x" * 73}, "password"),
        ({"password": "abcdefgh\x00"}, "password"),
    ],
)
def test_signup_rejects(change, field):
    obj = {**GOOD_SIGNUP, **change}
    with pytest.raises(ApiError) as e:
        validation.signup(body(obj))
    assert e.value.code == 400
    assert e.value.reason == "invalid_request"
    assert field in e.value.message


@pytest.mark.parametrize(
    "raw", [b"", b"   ", b"{", b"[]", b'"x"', b"null", b"\xff\xfe", b'{"a": NaN}', b"[" * 100000]
)
def test_body_must_be_json_object(raw):
    with pytest.raises(ApiError) as e:
        validation.login(raw)
    assert (e.value.code, e.value.reason) == (400, "invalid_request")


def test_login():
    assert validation.login(body({"email": " A@B.co ", "password": "p"})).email == "a@b.co"
    for obj in ({"password": "p"}, {"email": "a@b.co"}, {"email": "a@b.co", "password": 1}):
        with pytest.raises(ApiError):
            validation.login(body(obj))


def test_pay_amount_json_number_is_exact():
    p = validation.pay(b'{"receiver_email": "b@c.de", "amount": 0.29}')
    assert p.amount == 29
    p = validation.pay(b'{"receiver_email": "b@c.de", "amount": "1000000.00"}')
    assert p.amount == 100_000_000


@pytest.mark.parametrize(
    "amount", ["1.001", 0, -5, "1000000.01", True, None, "ten", 1.234, [1], "1e3"]
)
def test_pay_bad_amount_is_invalid_amount(amount):
    with pytest.raises(ApiError) as e:
        validation.pay(body({"receiver_email": "b@c.de", "amount": amount}))
    assert (e.value.code, e.value.reason) == (400, "invalid_amount")


def test_pay_missing_receiver_is_invalid_request():
    with pytest.raises(ApiError) as e:
        validation.pay(body({"amount": 1}))
    assert (e.value.code, e.value.reason) == (400, "invalid_request")
    assert "receiver_email" in e.value.message


def test_topup_missing_amount():
    with pytest.raises(ApiError) as e:
        validation.topup(b"{}")
    assert e.value.reason == "invalid_amount"


def test_page():
    assert validation.page({}) == validation.Page(20, "")
    assert validation.page({b"limit": [b"100"], b"cursor": [b"abc"]}) == validation.Page(100, "abc")
    for args in (
        {b"limit": [b"0"]},
        {b"limit": [b"101"]},
        {b"limit": [b"-1"]},
        {b"limit": [b"abc"]},
        {b"limit": [b"1", b"2"]},
        {b"cursor": [b"a b"]},
        {b"cursor": [b"x" * 513]},
        {b"cursor": ["é".encode()]},
    ):
        with pytest.raises(ApiError) as e:
            validation.page(args)
        assert e.value.code == 400


def test_idempotency_key():
    assert validation.idempotency_key(None) == ""
    assert validation.idempotency_key([b"abc-123"]) == "abc-123"
    assert validation.idempotency_key([b"k" * 255]) == "k" * 255
    for bad in ([b""], [b"k" * 256], [b"a\x01b"], ["é".encode()], [b"a", b"b"]):
        with pytest.raises(ApiError) as e:
            validation.idempotency_key(bad)
        assert (e.value.code, e.value.reason) == (400, "invalid_request")
