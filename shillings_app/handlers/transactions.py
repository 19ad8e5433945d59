"""Transaction history, newest first, with an opaque keyset cursor."""

from __future__ import annotations

import base64
import binascii

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, validation
from shillings_app.handlers.convert import transaction_message
from shillings_proto import pb, responses

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_CURSOR_PREFIX = "t1:"


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


async def transactions(ctx: Context, request: pb.Request) -> pb.Response:
    body = request.transactions
    user_id, token_id = validation.auth(body.auth)
    limit = body.limit or DEFAULT_LIMIT
    if limit > MAX_LIMIT:
        raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}")
    before_id = decode_cursor(body.cursor) if body.cursor else None
    rows = await ctx.store.transactions(
        user_id=user_id, token_id=token_id, limit=limit + 1, before_id=before_id
    )
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].id) if len(rows) > limit else ""
    return responses.transactions((transaction_message(tx) for tx in page), next_cursor)
