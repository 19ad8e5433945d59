"""HLT: can this app server reach MySQL."""

from __future__ import annotations

from shillings_app.handlers import Context, status
from shillings_app.storage import DatabaseUnavailable, RequestScope
from shillings_app.storage.housekeeping import ping_txn
from shillings_proto import pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    """200 when the database answered, else 503 ``unavailable``."""
    try:
        await ctx.db.run("ping", ping_txn, scope=scope)
    except DatabaseUnavailable:
        return pb.Response(
            status=pb.Status(code=503, reason="unavailable", message="database unreachable"),
            health=pb.HealthResponse(database_ok=False),
        )
    return pb.Response(status=status(), health=pb.HealthResponse(database_ok=True))
