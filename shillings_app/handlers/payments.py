"""Pay and top-up: validation, idempotency and the response stored with the key."""

from __future__ import annotations

from shillings_app.errors import InvalidRequest
from shillings_app.handlers import Context, validation
from shillings_app.storage.records import PayResult, Replay, TopupResult
from shillings_proto import pb, responses


def _pay_response(result: PayResult) -> pb.Response:
    return responses.pay(
        transaction_id=result.transaction_id,
        sender_id=result.sender_id,
        receiver_id=result.receiver_id,
        sender_balance=result.sender_balance,
    )


def _topup_response(result: TopupResult) -> pb.Response:
    return responses.topup(transaction_id=result.transaction_id, balance=result.balance)


async def pay(ctx: Context, request: pb.Request) -> pb.Response:
    body = request.pay
    user_id, token_id = validation.auth(body.auth)
    if not body.receiver_email.strip():
        raise InvalidRequest("receiver_email is required")
    receiver_email = validation.email(body.receiver_email, "receiver_email")
    amount = validation.amount(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "PAY", receiver_email, amount)
    outcome = await ctx.store.pay(
        sender_id=user_id,
        token_id=token_id,
        receiver_email=receiver_email,
        amount=amount,
        idempotency=idem,
        encode=lambda r: _pay_response(r).SerializeToString(),
    )
    if isinstance(outcome, Replay):
        return pb.Response.FromString(outcome.response)
    return _pay_response(outcome)


async def topup(ctx: Context, request: pb.Request) -> pb.Response:
    body = request.topup
    user_id, token_id = validation.auth(body.auth)
    amount = validation.amount(body.amount)
    idem = validation.idempotency_key(body.idempotency_key, "TPU", amount)
    outcome = await ctx.store.topup(
        user_id=user_id,
        token_id=token_id,
        amount=amount,
        idempotency=idem,
        encode=lambda r: _topup_response(r).SerializeToString(),
    )
    if isinstance(outcome, Replay):
        return pb.Response.FromString(outcome.response)
    return _topup_response(outcome)
