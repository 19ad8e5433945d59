"""TXQ: the caller's transactions (or one hold's: its capture), newest first, with an
opaque keyset cursor."""

from __future__ import annotations

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, pages, status, validation
from shillings_app.handlers.convert import transaction_message
from shillings_app.storage import RequestScope
from shillings_app.storage.history import transactions_txn
from shillings_proto import fields, pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.transactions
    user_id, token_id = validation.auth(body.auth)
    hold_id = ""
    if body.hold_id:
        canonical = fields.public_id(body.hold_id)
        if canonical is None:
            raise InvalidRequest("hold_id must be a hold's id (a UUID)")
        hold_id = canonical
    page, next_cursor = await pages.fetch(
        ctx,
        "transactions",
        transactions_txn,
        user_id,
        token_id,
        hold_id,
        limit=body.limit,
        cursor=body.cursor,
        scope=scope,
    )
    return pb.Response(
        status=status(),
        transactions=pb.TransactionsResponse(
            transactions=[transaction_message(tx) for tx in page],
            next_cursor=next_cursor,
        ),
    )
