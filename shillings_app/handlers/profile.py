"""USR: the caller's profile."""

from __future__ import annotations

from shillings_app.handlers import Context, status, validation
from shillings_app.handlers.convert import user_message
from shillings_app.storage import RequestScope
from shillings_app.storage.users import profile_txn
from shillings_proto import pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    user_id, token_id = validation.auth(request.profile.auth)
    user = await ctx.db.run("profile", profile_txn, user_id, token_id, scope=scope)
    return pb.Response(status=status(), profile=pb.ProfileResponse(user=user_message(user)))
