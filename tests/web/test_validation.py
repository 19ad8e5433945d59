"""Edge validation: every malformed field gets 400 with a message naming it."""

import json

import pytest

from shillings_proto import pb
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
    "address",
    [
        "a1<b>@example.com",
        "x..y@example.com",
        ".x@example.com",
        "x.@example.com",
        "a,b@example.com",
        'a"b(c)@example.com',
        "a b@example.com",
        "a@127.0.0.1",
        "a@exa_mple.com",
        "a@-bad-.com",
        "a@example..com",
        "a@example.com.",
        "a@b@example.com",
        "x" * 65 + "@example.com",
        "a@" + "x" * 64 + ".com",
    ],
)
def test_signup_and_pay_refuse_what_is_no_email_address(address):
    """Each was accepted (201) before: markup or commas in a local part, empty dot-atoms,
    an IP for a domain, underscores and edge hyphens in labels, an over-long local part."""
    for parse, obj in (
        (validation.signup, {**GOOD_SIGNUP, "email": address}),
        (validation.pay, {"receiver_email": address, "amount": "1.00"}),
    ):
        with pytest.raises(ApiError) as e:
            parse(body(obj))
        assert (e.value.code, e.value.reason) == (400, "invalid_request")
        assert "email" in e.value.message


@pytest.mark.parametrize(
    ("address", "canonical"),
    [
        ("O'Brien+tag@Example.IE", "o'brien+tag@example.ie"),
        ("a_b.c-d@sub-1.example.co.uk", "a_b.c-d@sub-1.example.co.uk"),
        ("x" * 64 + "@example.com", "x" * 64 + "@example.com"),
        ("\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a", "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a"),
        ("a@xn--bcher-kva.example", "a@xn--bcher-kva.example"),
    ],
)
def test_signup_takes_real_addresses(address, canonical):
    assert validation.signup(body({**GOOD_SIGNUP, "email": address})).email == canonical


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


@pytest.mark.parametrize("digits", [101, 4_300, 4_301, 20_000])
def test_a_json_integer_of_any_length_is_an_amount_out_of_range_not_bad_json(digits):
    """Python's ``int`` refuses over 4,300 digits; such a body is still valid JSON."""
    raw = b'{"receiver_email": "b@c.de", "amount": %s}' % (b"1" * digits)
    with pytest.raises(ApiError) as e:
        validation.pay(raw)
    assert (e.value.code, e.value.reason) == (400, "invalid_amount")
    raw = b'{"receiver_email": "b@c.de", "amount": 1, "expires_in": %s}' % (b"1" * digits)
    with pytest.raises(ApiError) as e:
        validation.hold(raw)
    assert (e.value.code, e.value.reason) == (400, "invalid_request")
    assert "expires_in must be a positive whole number of seconds" in e.value.message


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
    assert validation.page({}) == pb.TransactionsRequest(limit=20, cursor="")
    assert validation.page({b"limit": [b"100"], b"cursor": [b"abc"]}) == pb.TransactionsRequest(
        limit=100, cursor="abc"
    )
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


# -- issue 10: lookalike identities, refused characters, strict JSON, media type ----------

LOOKALIKES = [
    ("jos\u00e9@example.com", "jose\u0301@example.com"),  # NFC and NFD
    ("ada@example.com", "\uff41da@example.com"),  # full-width a
    ("fish@example.com", "\ufb01sh@example.com"),  # the fi ligature
    ("ada@example.com", "ADA@EXAMPLE.COM"),
    ("x\u03c3@example.com", "X\u03a3@EXAMPLE.COM"),  # small and capital sigma
    ("x\u03c3@example.com", "x\u03c2@example.com"),  # final sigma
    ("ada@example.com", "ada\uff20example\uff0ecom"),  # full-width @ and .
]


@pytest.mark.parametrize(("first", "second"), LOOKALIKES)
def test_lookalike_emails_have_one_canonical_form(first, second):
    canonical = validation.signup(body({**GOOD_SIGNUP, "email": first})).email
    assert validation.signup(body({**GOOD_SIGNUP, "email": second})).email == canonical
    assert validation.login(body({"email": second, "password": "p"})).email == canonical
    pay = validation.pay(body({"receiver_email": second, "amount": "1.00"}))
    assert pay.receiver_email == canonical


REFUSED = ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\u202e", "\u202a", "\u2066", "\u200f", "\u061c"]


@pytest.mark.parametrize("char", REFUSED)
def test_control_and_bidi_characters_refused_in_every_text_field(char):
    for field, value in (
        ("email", f"ev{char}il@example.com"),
        ("first_name", f"Ad{char}a"),
        ("middle_name", f"K{char}"),
        ("last_name", f"{char}Lovelace"),
    ):
        with pytest.raises(ApiError) as e:
            validation.signup(body({**GOOD_SIGNUP, field: value}))
        assert (e.value.code, e.value.reason) == (400, "invalid_request")
        assert field in e.value.message
    for call, obj in (
        (validation.login, {"email": f"a{char}@example.com", "password": "p"}),
        (validation.pay, {"receiver_email": f"a{char}@example.com", "amount": 1}),
    ):
        with pytest.raises(ApiError) as e:
            call(body(obj))
        assert (e.value.code, e.value.reason) == (400, "invalid_request")
        assert "email" in e.value.message


@pytest.mark.parametrize("char", ["\u200b", "\u00ad", "\ufeff", "\u3164", "\U000e0041", "\ue000"])
def test_invisible_characters_refused_in_emails(char):
    with pytest.raises(ApiError) as e:
        validation.signup(body({**GOOD_SIGNUP, "email": f"ad{char}a@example.com"}))
    assert (e.value.code, e.value.reason) == (400, "invalid_request")


def test_names_are_nfc_and_may_hold_joiners():
    s = validation.signup(
        body({**GOOD_SIGNUP, "first_name": "Jose\u0301", "last_name": "a\u200cb"})
    )
    assert (s.first_name, s.last_name) == ("Jos\u00e9", "a\u200cb")


SURROGATE_BODIES = {
    validation.signup: [
        '{"first_name":"%s","last_name":"L","email":"a@b.co","phone":"+15550001111","password":"12345678"}',
        '{"first_name":"A","last_name":"%s","email":"a@b.co","phone":"+15550001111","password":"12345678"}',
        '{"first_name":"A","middle_name":"%s","last_name":"L","email":"a@b.co","phone":"+15550001111","password":"12345678"}',
        '{"first_name":"A","last_name":"L","email":"a%s@b.co","phone":"+15550001111","password":"12345678"}',
        '{"first_name":"A","last_name":"L","email":"a@b.co","phone":"+1555000111%s","password":"12345678"}',
        '{"first_name":"A","last_name":"L","email":"a@b.co","phone":"+15550001111","password":"1234567%s"}',
    ],
    validation.login: [
        '{"email":"a%s@b.co","password":"p"}',
        '{"email":"a@b.co","password":"p%s"}',
    ],
    validation.pay: [
        '{"receiver_email":"a%s@b.co","amount":"1.00"}',
        '{"receiver_email":"a@b.co","amount":"1.0%s"}',
    ],
    validation.topup: ['{"amount":"%s"}'],
}


@pytest.mark.parametrize(
    ("call", "template"), [(c, t) for c, ts in SURROGATE_BODIES.items() for t in ts]
)
@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\udc00x\\ud83d"])
def test_lone_surrogate_in_any_string_field_is_400(call, template, escape):
    with pytest.raises(ApiError) as e:
        call((template % escape).encode())
    assert (e.value.code, e.value.reason) == (400, "invalid_request")
    assert "surrogate" in e.value.message


def test_a_surrogate_pair_is_one_character_and_fine():
    s = validation.signup(body({**GOOD_SIGNUP, "first_name": "\U0001f600"}))
    assert s.first_name == "\U0001f600"


@pytest.mark.parametrize(
    ("call", "raw", "field"),
    [
        (validation.topup, b'{"amount":"1.00","amount":"2.00"}', "amount"),
        (validation.pay, b'{"receiver_email":"a@b.co","amount":1,"amount":2}', "amount"),
        (
            validation.pay,
            b'{"receiver_email":"a@b.co","receiver_email":"c@d.co","amount":1}',
            "receiver_email",
        ),
        (validation.login, b'{"email":"a@b.co","password":"x","password":"y"}', "password"),
        (validation.signup, body(GOOD_SIGNUP)[:-1] + b',"email":"b@c.de"}', "email"),
    ],
)
def test_duplicate_keys_are_refused_naming_the_field(call, raw, field):
    with pytest.raises(ApiError) as e:
        call(raw)
    assert (e.value.code, e.value.reason) == (400, "parameter_duplicated")
    assert f'"{field}"' in e.value.message


@pytest.mark.parametrize(
    ("call", "obj"),
    [
        (validation.topup, {"amount": "1.00", "fee": "-5"}),
        (validation.pay, {"receiver_email": "a@b.co", "amount": 1, "fee": "-5"}),
        (validation.login, {"email": "a@b.co", "password": "x", "fee": "-5"}),
        (validation.signup, {**GOOD_SIGNUP, "fee": "-5"}),
    ],
)
def test_unknown_fields_are_refused_naming_the_field(call, obj):
    with pytest.raises(ApiError) as e:
        call(body(obj))
    assert (e.value.code, e.value.reason) == (400, "parameter_unknown")
    assert '"fee"' in e.value.message


@pytest.mark.parametrize(
    "value",
    [
        b"application/json",
        b"Application/JSON",
        b"application/json; charset=utf-8",
        b'application/json;charset="UTF-8"',
        b"application/json; charset=utf8; foo=bar",
    ],
)
def test_json_content_types_accepted(value):
    validation.content_type([value])


@pytest.mark.parametrize(
    "values",
    [
        None,
        [b""],
        [b"text/plain"],
        [b"text/plain; charset=utf-8"],
        [b"application/x-www-form-urlencoded"],
        [b"multipart/form-data; boundary=x"],
        [b"application/jsonx"],
        [b"application/json; charset=latin-1"],
        [b"application/json", b"application/json"],
    ],
)
def test_other_content_types_are_415(values):
    with pytest.raises(ApiError) as e:
        validation.content_type(values)
    assert (e.value.code, e.value.reason) == (415, "unsupported_media_type")


def test_a_remembered_email_is_the_canonical_one_and_a_refusal_stays_one():
    """Emails are remembered once checked: the same answer each time, for each field name;
    a refused one is refused again (not remembered as valid)."""
    for _ in range(2):
        pay = validation.pay(body({"receiver_email": "B\u00e9@Example.COM", "amount": 1}))
        assert pay.receiver_email == "b\u00e9@example.com"
        for _ in range(2):
            with pytest.raises(ApiError) as e:
                validation.pay(body({"receiver_email": "not-an-email", "amount": 1}))
            assert "receiver_email is not a valid email address" in e.value.message
        with pytest.raises(ApiError) as e:
            validation.signup(body({**GOOD_SIGNUP, "email": "not-an-email"}))
        assert "email is not a valid email address" in e.value.message
        assert "receiver_email" not in e.value.message


def test_escaped_characters_other_than_surrogates_are_fine():
    """Only a body with a \\u escape is searched for lone surrogates; an escaped ordinary
    character passes, in a key-value body with and without escapes."""
    s = validation.signup(body({**GOOD_SIGNUP, "first_name": "Ad\u00e0"}))
    assert s.first_name == "Ad\u00e0"
    raw = json.dumps({**GOOD_SIGNUP, "first_name": "Ad\u00e0"}, ensure_ascii=False).encode()
    assert b"\\u" not in raw
    assert validation.signup(raw).first_name == "Ad\u00e0"
