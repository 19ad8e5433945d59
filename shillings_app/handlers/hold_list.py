"""HLQ: the holds the caller pays or receives, newest first, with an opaque keyset cursor."""

from __future__ import annotations

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, pages, status, validation
from shillings_app.handlers.convert import hold_message
from shillings_app.storage import RequestScope
from shillings_app.storage.holds import ROLES, STATES, holds_txn
from shillings_proto import pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.holds
    user_id, token_id = validation.auth(body.auth)
    if body.role not in ROLES:
        raise InvalidRequest("role must be payer or receiver")
    if body.state and body.state not in STATES:
        raise InvalidRequest(f"state must be one of {', '.join(sorted(STATES))}")
    page, next_cursor = await pages.fetch(
        ctx,
        "holds",
        holds_txn,
        user_id,
        token_id,
        body.role,
        body.state,
        limit=body.limit,
        cursor=body.cursor,
        scope=scope,
    )
    return pb.Response(
        status=status(),
        holds=pb.HoldsResponse(
            holds=[hold_message(hold) for hold in page],
            next_cursor=next_cursor,
        ),
    )
