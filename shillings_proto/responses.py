"""Builders for the Response messages of each command, so the app server never assembles
protocol messages by hand (the Request side is ``shillings_proto.messages``)."""

from __future__ import annotations

from collections.abc import Iterable

from shillings_proto import pb

_OK = pb.Status(code=200, message="OK")


def user(
    *,
    user_id: int,
    first_name: str,
    middle_name: str,
    last_name: str,
    email: str,
    phone: str,
    balance: int,
    created_at: str,
    updated_at: str,
) -> pb.User:
    """A user profile; ``balance`` in cents, timestamps RFC 3339 UTC."""
    return pb.User(
        user_id=user_id,
        first_name=first_name,
        middle_name=middle_name,
        last_name=last_name,
        email=email,
        phone=phone,
        balance=balance,
        created_at=created_at,
        updated_at=updated_at,
    )


def transaction(
    *,
    transaction_id: str,
    sender_email: str | None,
    receiver_email: str,
    amount: int,
    created_at: str,
    kind: str,
) -> pb.Transaction:
    """One ledger row; ``sender_email`` is None (unset) for a top-up."""
    message = pb.Transaction(
        transaction_id=transaction_id,
        receiver_email=receiver_email,
        amount=amount,
        created_at=created_at,
        kind=kind,
    )
    if sender_email is not None:
        message.sender_email = sender_email
    return message


def signup(created: pb.User) -> pb.Response:
    return pb.Response(
        status=pb.Status(code=201, message="Created"), signup=pb.SignupResponse(user=created)
    )


def login(*, token: str, token_id: str, expires_at: int, user: pb.User) -> pb.Response:
    return pb.Response(
        status=_OK,
        login=pb.LoginResponse(token=token, token_id=token_id, expires_at=expires_at, user=user),
    )


def profile(found: pb.User) -> pb.Response:
    return pb.Response(status=_OK, profile=pb.ProfileResponse(user=found))


def revoke() -> pb.Response:
    return pb.Response(status=_OK, revoke=pb.RevokeResponse())


def pay(
    *, transaction_id: str, sender_id: int, receiver_id: int, sender_balance: int
) -> pb.Response:
    return pb.Response(
        status=_OK,
        pay=pb.PayResponse(
            transaction_id=transaction_id,
            sender_id=sender_id,
            receiver_id=receiver_id,
            sender_balance=sender_balance,
        ),
    )


def topup(*, transaction_id: str, balance: int) -> pb.Response:
    return pb.Response(
        status=_OK, topup=pb.TopupResponse(transaction_id=transaction_id, balance=balance)
    )


def transactions(rows: Iterable[pb.Transaction], next_cursor: str) -> pb.Response:
    return pb.Response(
        status=_OK,
        transactions=pb.TransactionsResponse(transactions=list(rows), next_cursor=next_cursor),
    )


def health(database_ok: bool) -> pb.Response:
    """200 when the database answered, else 503 ``unavailable``."""
    if database_ok:
        return pb.Response(status=_OK, health=pb.HealthResponse(database_ok=True))
    return pb.Response(
        status=pb.Status(code=503, reason="unavailable", message="database unreachable"),
        health=pb.HealthResponse(database_ok=False),
    )


def hello() -> pb.Response:
    return pb.Response(status=_OK, hello=pb.HelloResponse())
