"""LGN: check credentials and issue a JWT."""

from __future__ import annotations

from shillings_app.errors import InvalidCredentials, InvalidRequest
from shillings_app.handlers import Context, status
from shillings_app.handlers.convert import user_message
from shillings_app.storage import RequestScope
from shillings_app.storage.users import credentials_txn, record_login_txn
from shillings_proto import fields, pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.login
    if not body.email or not body.password:
        raise InvalidRequest("email and password are required")
    email = fields.login_email(body.email)
    found = await ctx.db.run("credentials", credentials_txn, email, scope=scope)
    if found is None:
        await ctx.passwords.verify_dummy(body.password, scope)
        raise InvalidCredentials()
    password_hash, user = found
    if not await ctx.passwords.verify(body.password, password_hash, scope):
        raise InvalidCredentials()
    await ctx.db.run("record_login", record_login_txn, user.user_id, scope=scope)
    issued = ctx.tokens.issue(user.user_id, user.email, int(ctx.clock.seconds()))
    return pb.Response(
        status=status(),
        login=pb.LoginResponse(
            token=issued.token,
            token_id=issued.token_id,
            expires_at=issued.expires_at,
            user=user_message(user),
        ),
    )
