"""Amount parsing and formatting: exact decimal handling, never floats."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shillings_web.money import MAX_AMOUNT, AmountError, format_cents, parse_amount


@pytest.mark.parametrize(
    ("value", "cents"),
    [
        (1, 100),
        (1000000, 100_000_000),
        ("0.01", 1),
        ("12.5", 1250),
        ("12.50", 1250),
        ("007.05", 705),
        ("1000000.00", 100_000_000),
        (Decimal("0.1"), 10),
        (Decimal("12.50"), 1250),
        (Decimal("12.500"), 1250),
        (Decimal("1E+2"), 10000),
    ],
)
def test_valid_amounts(value, cents):
    assert parse_amount(value) == cents


@pytest.mark.parametrize(
    "value",
    [
        0,
        -1,
        "0",
        "0.00",
        "-1.00",
        "1000000.01",
        1000001,
        10**30,
        "1.234",
        Decimal("1.234"),
        Decimal("0.001"),
        Decimal("999999.99999999999999999999999"),
        Decimal("NaN"),
        Decimal("Infinity"),
        "1e2",
        " 1.00",
        "12.50\n",
        "1.",
        ".5",
        "1,00",
        "",
        "abc",
        True,
        False,
        None,
        1.5,
        [1],
        {"a": 1},
    ],
)
def test_invalid_amounts(value):
    with pytest.raises(AmountError):
        parse_amount(value)


@pytest.mark.parametrize(
    ("cents", "text"),
    [(0, "0.00"), (1, "0.01"), (10, "0.10"), (1250, "12.50"), (10**15, "10000000000000.00")],
)
def test_format(cents, text):
    assert format_cents(cents) == text


@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_format_parse_round_trip(cents):
    assert parse_amount(format_cents(cents)) == cents
    assert parse_amount(Decimal(format_cents(cents))) == cents


@given(st.from_regex(r"[0-9]{1,16}(\.[0-9]{1,2})?", fullmatch=True))
def test_string_amounts_as_decimal_says(text):
    """A decimal string is parsed without Decimal: the same cents, or the same refusal."""
    exact = Decimal(text) * 100
    if 0 < exact <= MAX_AMOUNT:
        assert parse_amount(text) == int(exact)
    else:
        with pytest.raises(AmountError, match="amount must be > 0"):
            parse_amount(text)
