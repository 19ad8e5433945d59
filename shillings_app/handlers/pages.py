"""Keyset pages: newest first, ``limit`` rows, and an opaque cursor to the next page.

A cursor names the last row shown by its internal id, sealed with AES-256-GCM under a key
derived from the JWT secret (which every app server of a deployment shares) and bound, as
associated data, to its list and its owner (the user; for a delivery log, also the
endpoint). So a user can neither read an id out of it (ids are global: two cursors a day
apart would tell the platform's volume) nor alter it, nor page another list or another
user's rows with it: 400 ``invalid_request`` saying which. Its list is also spelled in
clear, as its prefix (``transactions.…``), so that a cursor passed to the wrong list is
named as such. The SQL is untouched: the page is still a range of one index below an id.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, validation
from shillings_app.storage import RequestScope

LISTS = ("transactions", "events", "holds", "deliveries")
"""The paged lists; each is a cursor's prefix."""
_NONCE = 12
_ID = 8


class _Row(Protocol):
    @property
    def id(self) -> int: ...


RowT = TypeVar("RowT", bound=_Row)


@lru_cache(maxsize=4)
def cursor_key(secret: str) -> AESGCM:
    """The cursor key of a deployment, derived from its JWT secret."""
    return AESGCM(hmac.new(secret.encode(), b"shillings cursor v1", hashlib.sha256).digest())


def _bound(kind: str, owner: str) -> bytes:
    return f"{kind}\x00{owner}".encode()


def encode_cursor(key: AESGCM, kind: str, owner: str, last_id: int) -> str:
    """``kind.`` + base64url of nonce, sealed ``last_id`` and tag, bound to ``kind``/``owner``."""
    nonce = os.urandom(_NONCE)
    sealed = key.encrypt(nonce, last_id.to_bytes(_ID, "big"), _bound(kind, owner))
    return f"{kind}." + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decode_cursor(key: AESGCM, kind: str, owner: str, cursor: str) -> int:
    """The internal id the next page starts below; ``InvalidRequest`` saying why not."""
    prefix, dot, body = cursor.partition(".")
    if dot and prefix != kind and prefix in LISTS:
        raise InvalidRequest(f"cursor belongs to the {prefix} list, not to {kind}")
    if not dot or prefix != kind:
        raise InvalidRequest("cursor is malformed: pass next_cursor as the list answered it")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        plain = key.decrypt(raw[:_NONCE], raw[_NONCE:], _bound(kind, owner))
    except (binascii.Error, ValueError, InvalidTag):
        raise InvalidRequest(
            f"cursor was not issued to you for this {kind} list (or was altered)"
        ) from None
    value = int.from_bytes(plain, "big")
    if len(plain) != _ID or not 0 < value < 2**63:
        raise InvalidRequest("cursor is malformed: pass next_cursor as the list answered it")
    return value


async def fetch(
    ctx: Context,
    kind: str,
    txn_fn: Callable[..., Sequence[RowT]],
    user_id: int,
    token_id: str,
    *args: Any,
    limit: int,
    cursor: str,
    scope: RequestScope,
    within: str = "",
) -> tuple[Sequence[RowT], str]:
    """One page of list ``kind`` (one of ``LISTS``, also the transaction's name):
    ``txn_fn(txn, user_id, token_id, *args, size + 1, before_id)``, cut to the page size
    (``limit``, checked by ``validation.page_limit``), with the cursor to the next page (""
    on the last one), bound to the user and ``within`` (the endpoint of a delivery log)."""
    size = validation.page_limit(limit)
    key = cursor_key(ctx.config.jwt_secret)
    owner = f"{user_id}/{within}"
    before_id = decode_cursor(key, kind, owner, cursor) if cursor else None
    rows = await ctx.db.run(
        kind, txn_fn, user_id, token_id, *args, size + 1, before_id, scope=scope
    )
    page = rows[:size]
    return page, encode_cursor(key, kind, owner, page[-1].id) if len(rows) > size else ""
