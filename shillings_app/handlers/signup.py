"""SGN: create an account."""

from __future__ import annotations

from shillings_app.errors import EmailTaken
from shillings_app.handlers import Context, status
from shillings_app.handlers.convert import user_message
from shillings_app.storage import RequestScope
from shillings_app.storage.users import create_user_txn, email_exists_txn
from shillings_proto import fields, pb


async def handle(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    body = request.signup
    first_name = fields.name(body.first_name, "first_name")
    middle_name = fields.name(body.middle_name, "middle_name", required=False) or None
    last_name = fields.name(body.last_name, "last_name")
    email = fields.email(body.email)
    phone = fields.phone(body.phone)
    password = fields.new_password(body.password)
    # Cheap check first so a taken email does not cost a bcrypt hash; the unique key
    # still decides a race.
    if await ctx.db.run("email_exists", email_exists_txn, email, scope=scope):
        raise EmailTaken()
    password_hash = await ctx.passwords.hash(password, scope)
    user = await ctx.db.run(
        "create_user",
        create_user_txn,
        first_name,
        middle_name,
        last_name,
        email,
        phone,
        password_hash,
        scope=scope,
    )
    return pb.Response(status=status(201), signup=pb.SignupResponse(user=user_message(user)))
