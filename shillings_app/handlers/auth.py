"""Signup, login (JWT), profile and token revocation."""

from __future__ import annotations

from shillings_app.errors import EmailTaken, InvalidCredentials, InvalidRequest
from shillings_app.handlers import Context, validation
from shillings_app.handlers.convert import user_message
from shillings_proto import pb, responses


async def signup(ctx: Context, request: pb.Request) -> pb.Response:
    body = request.signup
    first_name = validation.name(body.first_name, "first_name")
    middle_name = validation.name(body.middle_name, "middle_name", required=False) or None
    last_name = validation.name(body.last_name, "last_name")
    email = validation.email(body.email)
    phone = validation.phone(body.phone)
    password = validation.password(body.password)
    # Cheap check first so a taken email does not cost a bcrypt hash; the unique key
    # still decides a race.
    if await ctx.store.email_exists(email):
        raise EmailTaken()
    password_hash = await ctx.passwords.hash(password)
    user = await ctx.store.create_user(
        first_name=first_name,
        middle_name=middle_name,
        last_name=last_name,
        email=email,
        phone=phone,
        password_hash=password_hash,
    )
    return responses.signup(user_message(user))


async def login(ctx: Context, request: pb.Request) -> pb.Response:
    body = request.login
    if not body.email or not body.password:
        raise InvalidRequest("email and password are required")
    email = validation.login_email(body.email)
    found = await ctx.store.credentials_by_email(email)
    if found is None:
        await ctx.passwords.verify_dummy(body.password)
        raise InvalidCredentials()
    password_hash, user = found
    if not await ctx.passwords.verify(body.password, password_hash):
        raise InvalidCredentials()
    await ctx.store.record_login(user.user_id)
    issued = ctx.tokens.issue(user.user_id, user.email, int(ctx.clock.seconds()))
    return responses.login(
        token=issued.token,
        token_id=issued.token_id,
        expires_at=issued.expires_at,
        user=user_message(user),
    )


async def profile(ctx: Context, request: pb.Request) -> pb.Response:
    user_id, token_id = validation.auth(request.profile.auth)
    user = await ctx.store.profile(user_id, token_id)
    return responses.profile(user_message(user))


async def revoke(ctx: Context, request: pb.Request) -> pb.Response:
    user_id, token_id = validation.auth(request.revoke.auth)
    now = int(ctx.clock.seconds())
    # Remember the revocation until the token expires; no token outlives now + TTL.
    latest = now + ctx.config.token_ttl
    expires_at = request.revoke.expires_at
    if not now <= expires_at <= latest:
        expires_at = latest
    await ctx.store.revoke(user_id, token_id, expires_at)
    return responses.revoke()
