"""Health: can this app server reach MySQL."""

from __future__ import annotations

from shillings_app.handlers import Context
from shillings_app.storage import DatabaseUnavailable
from shillings_proto import pb, responses


async def health(ctx: Context, request: pb.Request) -> pb.Response:
    try:
        await ctx.store.ping()
    except DatabaseUnavailable:
        return responses.health(database_ok=False)
    return responses.health(database_ok=True)
