"""Test helpers: one protocol Request per command, from plain arguments (production code
builds its ``pb`` bodies directly: ``shillings_web.validation``)."""

from __future__ import annotations

from shillings_proto import pb


def _auth(user_id: int, token_id: str) -> pb.Auth:
    return pb.Auth(user_id=user_id, token_id=token_id)


def login(email: str, password: str) -> pb.Request:
    return pb.Request(command=pb.LGN, login=pb.LoginRequest(email=email, password=password))


def signup(
    *, first_name: str, middle_name: str, last_name: str, email: str, phone: str, password: str
) -> pb.Request:
    return pb.Request(
        command=pb.SGN,
        signup=pb.SignupRequest(
            first_name=first_name,
            middle_name=middle_name,
            last_name=last_name,
            email=email,
            phone=phone,
            password=password,
        ),
    )


def profile(user_id: int, token_id: str) -> pb.Request:
    return pb.Request(command=pb.USR, profile=pb.ProfileRequest(auth=_auth(user_id, token_id)))


def pay(
    user_id: int, token_id: str, receiver_email: str, amount: int, idempotency_key: str = ""
) -> pb.Request:
    """A payment of ``amount`` cents from the authenticated user to ``receiver_email``."""
    return pb.Request(
        command=pb.PAY,
        pay=pb.PayRequest(
            auth=_auth(user_id, token_id),
            receiver_email=receiver_email,
            amount=amount,
            idempotency_key=idempotency_key,
        ),
    )


def topup(user_id: int, token_id: str, amount: int, idempotency_key: str = "") -> pb.Request:
    """A top-up of ``amount`` cents to the authenticated user's balance."""
    return pb.Request(
        command=pb.TPU,
        topup=pb.TopupRequest(
            auth=_auth(user_id, token_id), amount=amount, idempotency_key=idempotency_key
        ),
    )


def refund(
    user_id: int, token_id: str, transaction_id: str, amount: int = 0, idempotency_key: str = ""
) -> pb.Request:
    """A refund of ``amount`` cents (0: all that remains) of ``transaction_id``."""
    return pb.Request(
        command=pb.RFD,
        refund=pb.RefundRequest(
            auth=_auth(user_id, token_id),
            transaction_id=transaction_id,
            amount=amount,
            idempotency_key=idempotency_key,
        ),
    )


def transactions(
    user_id: int, token_id: str, limit: int, cursor: str = "", hold_id: str = ""
) -> pb.Request:
    return pb.Request(
        command=pb.TXQ,
        transactions=pb.TransactionsRequest(
            auth=_auth(user_id, token_id), limit=limit, cursor=cursor, hold_id=hold_id
        ),
    )


def revoke(user_id: int, token_id: str, expires_at: int) -> pb.Request:
    return pb.Request(
        command=pb.RVK,
        revoke=pb.RevokeRequest(auth=_auth(user_id, token_id), expires_at=expires_at),
    )


def health() -> pb.Request:
    return pb.Request(command=pb.HLT, health=pb.HealthRequest())


def hello(secret: str) -> pb.Request:
    return pb.Request(command=pb.HEL, hello=pb.HelloRequest(secret=secret))


def hold(
    user_id: int,
    token_id: str,
    receiver_email: str,
    amount: int,
    expires_in: int = 0,
    idempotency_key: str = "",
) -> pb.Request:
    return pb.Request(
        command=pb.HLD,
        hold=pb.HoldRequest(
            auth=_auth(user_id, token_id),
            receiver_email=receiver_email,
            amount=amount,
            expires_in=expires_in,
            idempotency_key=idempotency_key,
        ),
    )


def capture(
    user_id: int, token_id: str, hold_id: str, amount: int = 0, idempotency_key: str = ""
) -> pb.Request:
    return pb.Request(
        command=pb.HLC,
        capture=pb.CaptureRequest(
            auth=_auth(user_id, token_id),
            hold_id=hold_id,
            amount=amount,
            idempotency_key=idempotency_key,
        ),
    )


def void(user_id: int, token_id: str, hold_id: str, idempotency_key: str = "") -> pb.Request:
    return pb.Request(
        command=pb.HLV,
        void=pb.VoidRequest(
            auth=_auth(user_id, token_id), hold_id=hold_id, idempotency_key=idempotency_key
        ),
    )


def holds(
    user_id: int, token_id: str, role: str = "", state: str = "", limit: int = 0, cursor: str = ""
) -> pb.Request:
    return pb.Request(
        command=pb.HLQ,
        holds=pb.HoldsRequest(
            auth=_auth(user_id, token_id), role=role, state=state, limit=limit, cursor=cursor
        ),
    )
