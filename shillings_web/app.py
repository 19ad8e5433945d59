"""The REST API (SPEC §2): thin Klein routes that validate, call the app server, answer.

A route builds its protocol body with ``validation`` (``OPERATIONS`` for the plain
authenticated calls), sends it through the pool and renders the answer by
``answers.JSON``; a protocol status maps straight to the HTTP status and reason. Every
error, including 404/405 and unexpected failures, is rendered as a JSON envelope by the
``handle_errors`` handlers at the end; a traceback never reaches a client.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from klein import Klein
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from shillings_proto import pb
from shillings_web import validation
from shillings_web.answers import ENCODED, JSON
from shillings_web.auth import COOKIE_NAME, Identity, authenticate
from shillings_web.cache import ProfileCache
from shillings_web.config import WebConfig
from shillings_web.drive import drive
from shillings_web.errors import (
    OK_HEAD,
    REASON_FOR_STATUS,
    ApiError,
    envelope,
    unavailable_message,
)
from shillings_web.operations import OPERATIONS, Operation
from shillings_web.pool import AppPool, AppUnavailable
from shillings_web.ratelimit import limits, subject_keys
from shillings_web.redisclient import Redis, RedisRefused, RedisUnavailable
from shillings_web.site import set_body, set_json

log = Logger()

HEALTH_KEY = "shl:healthz"
"""Written by /healthz: Redis is healthy only when it takes writes."""


@dataclass(slots=True)
class Reply:
    """A successful answer: status code and the body fields beside ``status``."""

    code: int = 200
    body: dict[str, Any] | None = None
    message: str | None = None
    reason: str | None = None
    encoded: bytes | None = None
    """A 200 answer's fields as JSON already (``"name":value,...``), instead of ``body``."""


Handler = Callable[..., Awaitable[Reply]]
"""A route: ``(api, request, **path parameters)``."""


def endpoint(handler: Handler) -> Callable[..., defer.Deferred[bytes]]:
    """Run ``handler`` to completion and render its Reply; an error goes on to the Klein
    error handlers (``handle_errors``), which render it as an envelope.

    The work is shielded from Klein cancelling it when the client disconnects (``drive``),
    so a pay whose client went away still refreshes the cache before the request ends.
    """

    @functools.wraps(handler)
    def run(self: ShillingsApi, request: Any, **params: str) -> defer.Deferred[bytes]:
        return drive(self._render(handler, request, **params))

    return run


def _may_have_changed(error: Exception) -> bool:
    """Whether a failed call may still have taken effect: no answer came (or a 5xx one)."""
    if isinstance(error, AppUnavailable):
        return not error.no_effect
    return isinstance(error, ApiError) and error.code >= 500


class ShillingsApi:
    """The Klein application; one instance per web process."""

    app = Klein()

    def __init__(
        self,
        config: WebConfig,
        pool: AppPool,
        redis: Redis,
        clock: Any,
    ) -> None:
        self.config = config
        self.pool = pool
        self.redis = redis
        self.clock = clock
        self.cache = ProfileCache(redis, clock, epoch_grace=config.cache_grace)
        self.logins, self.signups = limits(config, redis, clock)

    # -- plumbing ---------------------------------------------------------------------

    async def _render(self, handler: Handler, request: Any, **params: str) -> bytes:
        reply = await handler(self, request, **params)
        if reply.encoded is not None:
            return set_body(request, 200, OK_HEAD + reply.encoded + b"}")
        request_id = request.request_id if reply.code >= 500 else None
        fields = reply.body or {}
        document = envelope(reply.code, reply.message, reply.reason, request_id, **fields)
        return set_json(request, reply.code, document)

    def _error(self, request: Any, e: ApiError) -> bytes:
        request_id = request.request_id if e.code >= 500 else None
        document = envelope(e.code, e.message, e.reason, request_id)
        return set_json(request, e.code, document, e.headers)

    async def _call(
        self, http_request: Any, request: pb.Request, *, retry_safe: bool = False
    ) -> pb.Response:
        """Send one protocol request carrying the HTTP request id as its trace id; a non-2xx
        status becomes an ApiError as it stands."""
        request.trace_id = http_request.request_id
        response = await self.pool.call(request, retry_safe=retry_safe)
        code = response.status.code
        if code in (200, 201):
            return response
        if not 400 <= code <= 599:
            log.error(
                "app server answered {command} with status {code}",
                command=pb.Command.Name(request.command),
                code=code,
            )
            raise ApiError(500, "internal_error", "internal error")
        reason = response.status.reason or REASON_FOR_STATUS.get(code, "error")
        message = response.status.message or reason.replace("_", " ")
        if code == 503:
            message = unavailable_message(
                http_request, message, no_effect=response.status.no_effect
            )
            retry_after = {"Retry-After": str(response.status.retry_after or 1)}
            raise ApiError(code, reason, message, retry_after)
        raise ApiError(code, reason, message)

    async def _operate(self, request: Any, op: Operation, **params: str) -> Reply:
        """Authenticate, build the body, send the command, answer with its JSON and the
        app server's success status (200, or 201 for what it created); bump the cached
        profiles it may have changed before answering (``Operation``)."""
        identity = self._identity(request)
        body = op.body(request, **params)
        body.auth.user_id, body.auth.token_id = identity.user_id, identity.token_id
        touched = op.touches(identity, body) if op.touches is not None else ()
        try:
            response = await self._call(
                request,
                pb.Request(command=op.command, **{op.field: body}),
                retry_safe=not op.changes or bool(body.idempotency_key),
            )
        except (ApiError, AppUnavailable) as e:
            if op.answer_touches is not None and _may_have_changed(e):
                await self.cache.bump_all()
            raise
        finally:
            if touched:
                await self.cache.bump(*touched)
        if op.answer_touches is not None:
            await self.cache.bump(*op.answer_touches(response))
        encoded = ENCODED.get(op.field)
        if encoded is not None and response.status.code == 200:
            return Reply(encoded=encoded(response))
        return Reply(response.status.code, JSON[op.field](response))

    def _identity(self, request: Any) -> Identity:
        identity = authenticate(request, self.config.jwt_secret)
        request.user_id = identity.user_id
        return identity

    def _client_ip(self, request: Any) -> str:
        if self.config.trust_proxy:
            real_ip = request.getHeader(b"x-real-ip")
            if real_ip:
                text = real_ip.decode("latin-1") if isinstance(real_ip, bytes) else real_ip
                try:
                    return str(ipaddress.ip_address(text.strip()))
                except ValueError:
                    pass
        address = request.getClientAddress()
        return str(getattr(address, "host", None) or "local")

    def _cookie(self, request: Any, value: str, max_age: int) -> None:
        parts = [
            f"{COOKIE_NAME.decode()}={value}",
            f"Max-Age={max_age}",
            "Path=/",
            "HttpOnly",
            "SameSite=Lax",
        ]
        if self.config.cookie_secure:
            parts.append("Secure")
        request.responseHeaders.addRawHeader(b"Set-Cookie", "; ".join(parts).encode("ascii"))

    # -- routes -----------------------------------------------------------------------

    @app.route("/v1/signup", methods=["POST"])
    @endpoint
    async def signup(self, request: Any) -> Reply:
        validation.body_headers(request.requestHeaders)
        body = validation.signup(request.body())
        await self.signups.reserve(subject_keys("signup", self._client_ip(request)))
        response = await self._call(request, pb.Request(command=pb.SGN, signup=body))
        request.user_id = response.signup.user.user_id
        return Reply(201, JSON["signup"](response))

    @app.route("/v1/login", methods=["POST"])
    @endpoint
    async def login(self, request: Any) -> Reply:
        validation.body_headers(request.requestHeaders)
        body = validation.login(request.body())
        attempt = await self.logins.reserve(request, body.email, self._client_ip(request))
        outcome = "void"  # no verdict on the password (e.g. 503): the attempt is not counted
        try:
            response = await self._call(
                request, pb.Request(command=pb.LGN, login=body), retry_safe=True
            )
            outcome = "ok"
        except ApiError as e:
            if e.reason == "invalid_credentials":
                outcome = "fail"
            raise
        finally:
            await self.logins.settle(attempt, outcome)
        result = response.login
        request.user_id = result.user.user_id
        max_age = max(1, int(result.expires_at - self.clock.seconds()))
        self._cookie(request, result.token, max_age)
        self.logins.devices.issue(request, body.email)
        return Reply(200, JSON["login"](response))

    @app.route("/v1/logout", methods=["POST"])
    @endpoint
    async def logout(self, request: Any) -> Reply:
        identity = self._identity(request)
        auth = pb.Auth(user_id=identity.user_id, token_id=identity.token_id)
        revoke = pb.RevokeRequest(auth=auth, expires_at=identity.expires_at)
        try:
            await self._call(request, pb.Request(command=pb.RVK, revoke=revoke), retry_safe=True)
        finally:
            await self.cache.forget(identity)
        self._cookie(request, "", 0)
        return Reply(200)

    @app.route("/v1/account", methods=["GET"])
    @endpoint
    async def account(self, request: Any) -> Reply:
        identity = self._identity(request)
        cached = await self.cache.lookup(identity)
        if cached.user is not None:
            return Reply(encoded=b'"user":' + cached.user.encode("utf-8"))
        auth = pb.Auth(user_id=identity.user_id, token_id=identity.token_id)
        response = await self._call(
            request,
            pb.Request(command=pb.USR, profile=pb.ProfileRequest(auth=auth)),
            retry_safe=True,
        )
        answer = JSON["profile"](response)
        until = response.profile.user.next_hold_expiry_ms / 1000
        await self.cache.fill(identity, cached, answer["user"], until)
        return Reply(200, answer)

    @app.route("/healthz", methods=["GET"])
    @endpoint
    async def healthz(self, request: Any) -> Reply:
        redis_check = defer.ensureDeferred(self._redis_status())
        app_check = defer.ensureDeferred(self._app_status())
        redis_status: str = await redis_check
        app_status: str = await app_check
        checks = {
            "redis": redis_status,
            "app": app_status,
            "app_connections": self.pool.live_connections,
        }
        if redis_status == "ok" and app_status == "ok":
            return Reply(200, {"checks": checks})
        return Reply(503, {"checks": checks}, "unhealthy", "unavailable")

    async def _redis_status(self) -> str:
        """ "ok" when Redis takes a write (the rate limits need it), "refusing_writes" when
        it answers with an error (e.g. full under ``noeviction``), else "down"."""
        try:
            await self.redis.execute("set", HEALTH_KEY, "1", 60)
        except RedisRefused:
            return "refusing_writes"
        except RedisUnavailable:
            return "down"
        return "ok"

    async def _app_status(self) -> str:
        """ "ok" when any app server reaches MySQL, else "database_down" when one answered,
        else "down"."""
        answers = await self.pool.ask_each(
            lambda: pb.Request(command=pb.HLT, health=pb.HealthRequest())
        )
        if any(r is not None and r.health.database_ok for r in answers.values()):
            return "ok"
        if any(r is not None for r in answers.values()):
            return "database_down"
        return "down"

    # -- errors: each rendered as an envelope, here only ---------------------------------

    @app.handle_errors(ApiError)
    def api_error(self, request: Any, failure: Failure) -> bytes:
        return self._error(request, failure.value)

    @app.handle_errors(AppUnavailable)
    def app_unavailable(self, request: Any, failure: Failure) -> bytes:
        message = unavailable_message(
            request, str(failure.value), no_effect=failure.value.no_effect
        )
        return self._error(request, ApiError(503, "unavailable", message, {"Retry-After": "1"}))

    @app.handle_errors(NotFound)
    def not_found(self, request: Any, failure: Failure) -> bytes:
        return set_json(request, 404, envelope(404, "no such endpoint", "not_found"))

    @app.handle_errors(MethodNotAllowed)
    def method_not_allowed(self, request: Any, failure: Failure) -> bytes:
        allowed = sorted(getattr(failure.value, "valid_methods", None) or [])
        headers = {"Allow": ", ".join(allowed)} if allowed else None
        return set_json(
            request,
            405,
            envelope(405, "method not allowed on this endpoint", "method_not_allowed"),
            headers,
        )

    @app.handle_errors(HTTPException)
    def http_exception(self, request: Any, failure: Failure) -> bytes:
        # Routing redirects (e.g. merged slashes) are not followed by an API: 404.
        code = getattr(failure.value, "code", 404) or 404
        if code < 400:
            code = 404
        reason = REASON_FOR_STATUS.get(code, "invalid_request")
        return set_json(request, code, envelope(code, None, reason))

    @app.handle_errors(Exception)
    def unexpected(self, request: Any, failure: Failure) -> bytes:
        log.failure(
            "unhandled error in {method} {path} request_id={request_id}",
            failure,
            method=request.method.decode("latin-1"),
            path=request.path.decode("latin-1"),
            request_id=getattr(request, "request_id", "-"),
        )
        return self._error(request, ApiError(500, "internal_error", "internal error"))


def _serve(name: str, op: Operation) -> Handler:
    """The route handler of ``OPERATIONS[name]``."""

    async def run(api: ShillingsApi, request: Any, **params: str) -> Reply:
        return await api._operate(request, op, **params)

    run.__name__ = run.__qualname__ = name
    return run


for _name, _op in OPERATIONS.items():
    ShillingsApi.app.route(_op.route, methods=[_op.method], endpoint=_name)(
        endpoint(_serve(_name, _op))
    )
