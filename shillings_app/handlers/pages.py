"""Keyset pages: newest first, ``limit`` rows, and an opaque cursor naming the last
internal id shown (the next page starts below it)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Protocol, TypeVar

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import validation

_CURSOR_PREFIX = "t1:"


class _Row(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=_Row)


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The internal id the next page starts below; ``InvalidRequest`` if malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidRequest("bad cursor") from None
    if not raw.startswith(_CURSOR_PREFIX) or not raw[len(_CURSOR_PREFIX) :].isdigit():
        raise InvalidRequest("bad cursor")
    value = int(raw[len(_CURSOR_PREFIX) :])
    if not 0 < value < 2**63:
        raise InvalidRequest("bad cursor")
    return value


def window(limit: int, cursor: str) -> tuple[int, int | None]:
    """The page size (``validation.page_limit``) and the id the page starts below
    (None: from the newest)."""
    return validation.page_limit(limit), decode_cursor(cursor) if cursor else None


def cut(rows: Sequence[RowT], limit: int) -> tuple[Sequence[RowT], str]:
    """``rows`` (fetched ``limit + 1``) cut to the page, with the cursor to the next page
    ("" on the last one)."""
    page = rows[:limit]
    return page, encode_cursor(page[-1].id) if len(rows) > limit else ""
