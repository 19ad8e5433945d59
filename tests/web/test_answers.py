"""Answers written as JSON fields directly (``answers.ENCODED``) are the bytes the generic
path (``answers.JSON`` through ``errors.encode``) writes."""

from hypothesis import given
from hypothesis import strategies as st

from shillings_proto import pb
from shillings_web.answers import ENCODED, JSON
from shillings_web.errors import OK_HEAD, encode, envelope

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
CENTS = st.integers(min_value=-(2**62), max_value=2**62)


def _both(field: str, response: pb.Response) -> tuple[bytes, bytes]:
    return OK_HEAD + ENCODED[field](response) + b"}", encode(envelope(200, **JSON[field](response)))


def test_every_encoded_answer_has_a_generic_one():
    assert set(ENCODED) <= set(JSON)


@given(TEXT, CENTS)
def test_pay_answer_bytes(transaction_id, balance):
    response = pb.Response(
        pay=pb.PayResponse(transaction_id=transaction_id, sender_balance=balance)
    )
    direct, generic = _both("pay", response)
    assert direct == generic


@given(TEXT, CENTS)
def test_topup_answer_bytes(transaction_id, balance):
    response = pb.Response(topup=pb.TopupResponse(transaction_id=transaction_id, balance=balance))
    direct, generic = _both("topup", response)
    assert direct == generic


def test_escapes_and_non_ascii_as_the_encoder_writes_them():
    response = pb.Response(pay=pb.PayResponse(transaction_id='a"\\\n\x01é€😀', sender_balance=5))
    direct, generic = _both("pay", response)
    assert direct == generic
    assert "é€😀".encode() in direct and b'\\"' in direct and b"\\u0001" in direct
