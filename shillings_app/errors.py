"""Errors that end a request with a specific protocol status (SPEC §2 reasons)."""

from __future__ import annotations

from shillings_proto.fields import AMOUNT_RANGE


class AppError(Exception):
    """A request outcome other than success: HTTP-like code, stable reason, human message."""

    code = 500
    reason = "internal_error"
    message = "internal error"
    no_effect = True
    """The request changed nothing (every refusal; see ``Status.no_effect``)."""
    retry_after = 0
    """Seconds after which a retry may succeed (503 only; 0: not said)."""
    remembered = False
    """A refusal decided on the data (funds, the receiver, a hold's state): stored under the
    request's idempotency key, so a retry with it gets this answer again (SPEC §2: same key,
    same body, same response), whatever changed since."""

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


class InvalidRequest(AppError):
    code, reason, message = 400, "invalid_request", "invalid request"


class InvalidAmount(AppError):
    code, reason, message = 400, "invalid_amount", AMOUNT_RANGE


class ExceedsHold(InvalidAmount):
    """A capture of more than its hold: decided on the hold, so remembered."""

    message = "amount exceeds the hold's amount"
    remembered = True


class Unauthenticated(AppError):
    code, reason, message = 401, "unauthenticated", "authentication required"


class InvalidCredentials(AppError):
    code, reason, message = 401, "invalid_credentials", "invalid email or password"


class ReceiverNotFound(AppError):
    code, reason, message = 404, "receiver_not_found", "no user with that email"
    remembered = True


class EmailTaken(AppError):
    code, reason, message = 409, "email_taken", "email already registered"


class SelfPayment(AppError):
    code, reason, message = 422, "self_payment", "cannot pay yourself"
    remembered = True


class InsufficientFunds(AppError):
    code, reason, message = 422, "insufficient_funds", "insufficient funds"
    remembered = True


class BalanceLimit(AppError):
    code, reason, message = 422, "balance_limit", "balance would exceed the limit"
    remembered = True


class IdempotencyKeyReused(AppError):
    code, reason, message = (
        422,
        "idempotency_key_reused",
        "idempotency key already used with a different request",
    )


class Unavailable(AppError):
    """The database failed; whether the work took effect is said by ``no_effect``, set per
    request (a 503's message names the cause, the web layer words the outcome)."""

    code, reason, message = 503, "unavailable", "database unavailable"


class TooLate(AppError):
    code, reason, message = 503, "unavailable", "could not be completed in time"


class PasswordsBusy(AppError):
    code, reason, message = 503, "unavailable", "too many password checks in progress"
    retry_after = 1


class ResolutionsBusy(AppError):
    code, reason, message = 503, "unavailable", "too many webhook host name resolutions in progress"
    retry_after = 1


class HoldNotFound(AppError):
    code, reason, message = 404, "hold_not_found", "no such hold of which you are the receiver"
    remembered = True


class HoldNotActive(AppError):
    code, reason, message = 409, "hold_not_active", "the hold is captured, voided or expired"
    remembered = True


class InvalidUrl(AppError):
    code, reason, message = 400, "invalid_url", "invalid webhook url"


class WebhookNotFound(AppError):
    code, reason, message = 404, "webhook_not_found", "no such webhook"


class TooManyWebhooks(AppError):
    code, reason, message = 422, "too_many_webhooks", "too many webhooks"
    remembered = True


class TransactionNotFound(AppError):
    code, reason, message = 404, "transaction_not_found", "no such transaction of yours"
    remembered = True


class NotRefundable(AppError):
    code, reason, message = 422, "not_refundable", "only payments and captures can be refunded"
    remembered = True


class RefundExceedsPayment(AppError):
    code, reason, message = (
        422,
        "refund_exceeds_payment",
        "refunds would exceed the amount of the original transaction",
    )
    remembered = True


class Refused(AppError):
    """A refusal read back from an idempotency key (``AppError.remembered``): the answer the
    key's first use got."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code, self.reason = code, reason
        super().__init__(message)
