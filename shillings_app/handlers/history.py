"""TXQ: the caller's transactions, newest first, with an opaque keyset cursor."""

from __future__ import annotations

from shillings_app.handlers import Context, pages, status, validation
from shillings_app.handlers.convert import transaction_message
from shillings_app.storage import RequestScope
from shillings_app.storage.history import transactions_txn
from shillings_proto import pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.transactions
    user_id, token_id = validation.auth(body.auth)
    page, next_cursor = await pages.fetch(
        ctx,
        "transactions",
        transactions_txn,
        user_id,
        token_id,
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
