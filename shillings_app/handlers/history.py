"""TXQ: the caller's transactions, newest first, with an opaque keyset cursor."""

from __future__ import annotations

import base64
import binascii

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import transaction_message
from shillings_app.storage import RequestScope
from shillings_app.storage.history import transactions_txn
from shillings_proto import pb

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


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.transactions
    user_id, token_id = validation.auth(body.auth)
    limit = validation.page_limit(body.limit)
    before_id = decode_cursor(body.cursor) if body.cursor else None
    rows = await ctx.db.run(
        "transactions", transactions_txn, user_id, token_id, limit + 1, before_id, scope=scope
    )
    page = rows[:limit]
    return pb.Response(
        status=status(),
        transactions=pb.TransactionsResponse(
            transactions=[transaction_message(tx) for tx in page],
            next_cursor=encode_cursor(page[-1].id) if len(rows) > limit else "",
        ),
    )
