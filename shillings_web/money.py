"""Amounts: request values to integer cents, and cents to "12.50" strings. Never floats."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

from shillings_proto.fields import AMOUNT_RANGE, MAX_AMOUNT, amount_in_range
from shillings_proto.shapes import format_cents

__all__ = ["AmountError", "format_cents", "parse_amount"]

_AMOUNT_STRING = re.compile(r"([0-9]{1,16})(?:\.([0-9]{1,2}))?")
_CENT = Decimal("0.01")


class AmountError(ValueError):
    """The amount is malformed or out of range; the message says why."""


def parse_amount(value: object) -> int:
    """A JSON amount (integer, exact decimal number, or string with <= 2 decimals) in cents.

    JSON numbers must reach here as ``int`` or ``Decimal`` (parse with
    ``parse_float=Decimal``); a ``float`` or ``bool`` is refused.
    """
    if isinstance(value, bool) or value is None:
        raise AmountError("amount must be a number or a decimal string")
    if isinstance(value, int):
        cents = value * 100
    elif isinstance(value, Decimal):
        cents = _decimal_cents(value)
    elif isinstance(value, str):
        match = _AMOUNT_STRING.fullmatch(value)
        if match is None:
            raise AmountError(
                'amount must be a decimal string with at most two decimal places, e.g. "12.50"'
            )
        # Digits only, at most two decimals: the cents are the digits with the fraction
        # padded to two places (what the Decimal path computes, without a Decimal context).
        whole, fraction = match.groups()
        cents = int(whole + (fraction or "").ljust(2, "0"))
    else:
        raise AmountError("amount must be a number or a decimal string")
    if not amount_in_range(cents):
        raise AmountError(AMOUNT_RANGE)
    return cents


def _decimal_cents(value: Decimal) -> int:
    if not value.is_finite():
        raise AmountError("amount must be a finite number")
    if value <= 0 or value > MAX_AMOUNT // 100:
        raise AmountError(AMOUNT_RANGE)
    with localcontext() as ctx:
        ctx.prec = 40
        try:
            rounded = value.quantize(_CENT)
        except InvalidOperation:
            raise AmountError("amount must have at most two decimal places") from None
        if rounded != value:
            raise AmountError("amount must have at most two decimal places")
        return int(rounded.scaleb(2))
