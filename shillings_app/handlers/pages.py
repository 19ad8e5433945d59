"""Keyset pages: newest first, ``limit`` rows, and an opaque cursor naming the last
internal id shown (the next page starts below it)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, validation
from shillings_app.storage import RequestScope

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


async def fetch(
    ctx: Context,
    desc: str,
    txn_fn: Callable[..., Sequence[RowT]],
    *args: Any,
    limit: int,
    cursor: str,
    scope: RequestScope,
) -> tuple[Sequence[RowT], str]:
    """One page: ``txn_fn(txn, *args, size + 1, before_id)`` run as ``desc``, cut to the
    page size (``limit``, checked by ``validation.page_limit``), with the cursor to the next
    page ("" on the last one)."""
    size = validation.page_limit(limit)
    before_id = decode_cursor(cursor) if cursor else None
    rows = await ctx.db.run(desc, txn_fn, *args, size + 1, before_id, scope=scope)
    page = rows[:size]
    return page, encode_cursor(page[-1].id) if len(rows) > size else ""
