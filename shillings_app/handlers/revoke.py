"""RVK: revoke the caller's token (logout)."""

from __future__ import annotations

from shillings_app.handlers import Context, status, validation
from shillings_app.storage import RequestScope
from shillings_app.storage.revocations import revoke_txn
from shillings_proto import pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    user_id, token_id = validation.auth(request.revoke.auth)
    now = int(ctx.clock.seconds())
    # Remember the revocation until the token expires; no token outlives now + TTL.
    latest = now + ctx.config.token_ttl
    expires_at = request.revoke.expires_at
    if not now <= expires_at <= latest:
        expires_at = latest
    await ctx.db.run("revoke", revoke_txn, user_id, token_id, expires_at, scope=scope)
    return pb.Response(status=status(), revoke=pb.RevokeResponse())
