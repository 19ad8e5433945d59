"""EVQ: the caller's events, newest first, with an opaque keyset cursor."""

from __future__ import annotations

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, pages, status, validation
from shillings_app.handlers.convert import rfc3339
from shillings_app.storage import RequestScope
from shillings_app.storage.event_history import events_txn
from shillings_app.storage.events import TYPES
from shillings_proto import pb


def event_type(value: str, field: str) -> str:
    """``value`` if it is an event type; else ``InvalidRequest`` naming ``field``."""
    if value not in TYPES:
        raise InvalidRequest(f"{field} must be one of {', '.join(TYPES)}")
    return value


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.events
    user_id, token_id = validation.auth(body.auth)
    type_ = event_type(body.type, "type") if body.type else ""
    page, next_cursor = await pages.fetch(
        ctx,
        "events",
        events_txn,
        user_id,
        token_id,
        type_,
        limit=body.limit,
        cursor=body.cursor,
        scope=scope,
    )
    return pb.Response(
        status=status(),
        events=pb.EventsResponse(
            events=[
                pb.Event(
                    event_id=e.event_id,
                    type=e.type,
                    created_at=rfc3339(e.created_at),
                    data_json=e.data,
                )
                for e in page
            ],
            next_cursor=next_cursor,
        ),
    )
