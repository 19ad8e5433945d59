"""Health: can this app server reach MySQL."""

from __future__ import annotations

from shillings_app.handlers import Context
from shillings_app.storage import DatabaseUnavailable
from shillings_proto import pb


async def health(ctx: Context, request: pb.Request) -> pb.Response:
    try:
        await ctx.store.ping()
    except DatabaseUnavailable:
        return pb.Response(
            status=pb.Status(code=503, reason="unavailable", message="database unreachable"),
            health=pb.HealthResponse(database_ok=False),
        )
    return pb.Response(
        status=pb.Status(code=200, message="OK"), health=pb.HealthResponse(database_ok=True)
    )
