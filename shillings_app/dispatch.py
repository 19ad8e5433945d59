"""Command → handler; every outcome, including bad input and failures, is a Response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from twisted.logger import Logger

from shillings_app.errors import AppError, InvalidRequest, TooLate, Unavailable
from shillings_app.handlers import (
    Context,
    events,
    health,
    history,
    hold_capture,
    hold_create,
    hold_list,
    hold_void,
    login,
    pay,
    profile,
    refund,
    revoke,
    signup,
    topup,
    webhook_create,
    webhooks,
)
from shillings_app.storage import DatabaseUnavailable, DeadlineExceeded, RequestScope
from shillings_proto import pb
from shillings_proto.fields import FieldError
from shillings_proto.framing import error_response

Handler = Callable[[Context, pb.Request, RequestScope], Awaitable[pb.Response]]

ROUTES: dict[int, tuple[str, Handler]] = {
    pb.LGN: ("login", login.handle),
    pb.SGN: ("signup", signup.handle),
    pb.USR: ("profile", profile.handle),
    pb.PAY: ("pay", pay.handle),
    pb.TPU: ("topup", topup.handle),
    pb.TXQ: ("transactions", history.handle),
    pb.RFD: ("refund", refund.handle),
    pb.RVK: ("revoke", revoke.handle),
    pb.HLT: ("health", health.handle),
    pb.HLD: ("hold", hold_create.handle),
    pb.HLC: ("capture", hold_capture.handle),
    pb.HLV: ("void", hold_void.handle),
    pb.HLQ: ("holds", hold_list.handle),
    pb.EVQ: ("events", events.handle),
    pb.WHC: ("webhook_create", webhook_create.handle),
    pb.WHQ: ("webhooks", webhooks.list_),
    pb.WHD: ("webhook_delete", webhooks.delete),
    pb.WHL: ("deliveries", webhooks.deliveries),
}
"""Each command with the ``body`` oneof field it requires and its handler (HEL is handled
by the connection itself)."""

log = Logger()


_COMMAND_NAMES = {number: name for name, number in pb.Command.items()}


def command_name(command: int) -> str:
    return _COMMAND_NAMES.get(command) or str(command)


def _refusal(error: AppError, no_effect: bool) -> pb.Response:
    response = error_response(error.code, error.reason, error.message)
    if error.code == 503:
        response.status.no_effect = no_effect
        response.status.retry_after = error.retry_after
    return response


async def dispatch(ctx: Context, request: pb.Request, scope: RequestScope) -> pb.Response:
    """Run the handler of ``request.command`` unless its deadline (``scope``) has passed;
    map every error to its status, here and only here. A 503 says whether the request
    surely had no effect: it did not when no transaction of it reached COMMIT."""
    try:
        scope.check("dispatch")
        route = ROUTES.get(request.command)
        if route is None:
            raise InvalidRequest(f"unknown command {command_name(request.command)}")
        body_field, handler = route
        if request.WhichOneof("body") != body_field:
            raise InvalidRequest(
                f"command {command_name(request.command)} needs a {body_field} body"
            )
        return await handler(ctx, request, scope)
    except AppError as e:
        return _refusal(e, no_effect=e.no_effect)
    except FieldError as e:
        return _refusal(InvalidRequest(str(e)), no_effect=True)
    except DeadlineExceeded as e:
        log.warn("request {request_id}: {error}", request_id=request.request_id, error=e)
        return _refusal(TooLate(), no_effect=True)
    except DatabaseUnavailable as e:
        log.warn("request {request_id}: {error}", request_id=request.request_id, error=e)
        return _refusal(Unavailable(), no_effect=not scope.reached_commit)
    except Exception:
        log.failure(
            "unhandled error in {command} request {request_id}",
            command=command_name(request.command),
            request_id=request.request_id,
        )
        return _refusal(AppError(f"internal error (request {request.request_id})"), False)


_AUTHENTICATED = frozenset(
    field.name
    for field in pb.Request.DESCRIPTOR.oneofs_by_name["body"].fields
    if field.message_type is not None and "auth" in field.message_type.fields_by_name
)
"""The request bodies that carry an ``auth``."""


def user_id_of(request: pb.Request, response: pb.Response) -> int | None:
    """The user a request acted for, for the request log."""
    field = request.WhichOneof("body")
    if field in _AUTHENTICATED:
        body = getattr(request, field)
        if body.HasField("auth"):
            return int(body.auth.user_id)
    out = response.WhichOneof("body")
    if out in ("login", "signup"):
        return int(getattr(response, out).user.user_id)
    return None
