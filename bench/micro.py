"""Same-run before/after of the two web-process fixes, timed in isolation.

- JWT: full PyJWT verification (signature, claims) per request, as before, against the
  per-process cache of verified tokens (a dict lookup and an expiry check).
- Request log line: a six-field event through Twisted's ``textFileLogObserver`` (format,
  strftime and a write + flush per line), as before, against the prebuilt line through
  ``BatchedTextObserver`` at 1,000 lines/s (one write per 100 lines); both write into a
  pipe drained by another process, as under supervisord.
"""

from __future__ import annotations

import io
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
from twisted.internet.task import Clock
from twisted.logger import LogLevel, textFileLogObserver

from shillings_web import auth
from shillings_web.logs import BatchedTextObserver


def _per_call_us(fn: Callable[[], Any], seconds: float) -> float:
    calls = 0
    began = time.perf_counter()
    while True:
        for _ in range(200):
            fn()
        calls += 200
        elapsed = time.perf_counter() - began
        if elapsed >= seconds:
            return round(elapsed / calls * 1e6, 2)


def _event(prebuilt: bool) -> dict[str, Any]:
    """A request log event as ShillingsRequest.log_outcome emitted it before the fix (six
    fields formatted by twisted.logger) or after (the line built in one f-string)."""
    request_id = uuid.uuid4().hex
    fields: dict[str, Any] = {
        "log_format": "{method} {path} {status} {duration_ms}ms rid={request_id} user={user}",
        "user": 5,
    }
    if prebuilt:
        fields = {
            "log_format": "{request_line}",
            "request_line": f"POST /v1/pay 200 2.3ms rid={request_id} user=5",
        }
    return {
        **fields,
        "method": "POST",
        "path": "/v1/pay",
        "status": 200,
        "duration_ms": 2.3,
        "request_id": request_id,
        "user_id": 5,
        "log_time": time.time(),
        "log_level": LogLevel.info,
        "log_namespace": "shillings_web.request",
    }


def run(seconds: float = 0.5) -> dict[str, dict[str, float]]:
    """Microseconds per call, before and after each fix."""
    secret = "b" * 64
    now = int(time.time())
    claims = {"sub": "7", "email": "a@example.com", "iat": now, "exp": now + 600}
    token = jwt.encode({**claims, "jti": uuid.uuid4().hex}, secret, algorithm="HS256")
    results = {
        "jwt_verification": {
            "before_us": _per_call_us(lambda: auth._verify_signed(token, secret), seconds),
            "after_us": _per_call_us(lambda: auth.verify_token(token, secret), seconds),
        }
    }
    drain = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert drain.stdin is not None
    try:
        stream = io.TextIOWrapper(drain.stdin, encoding="utf-8", line_buffering=True)
        classic = textFileLogObserver(stream)
        clock = Clock()
        batched = BatchedTextObserver(stream, clock)
        old_event, new_event = _event(prebuilt=False), _event(prebuilt=True)
        calls = [0]

        def batched_call() -> None:
            batched(dict(new_event))
            calls[0] += 1
            if calls[0] % 100 == 0:
                clock.advance(0.1)  # 100 lines per 0.1 s: a web process at 1,000 req/s

        results["request_log_line"] = {
            "before_us": _per_call_us(lambda: classic(dict(old_event)), seconds),
            "after_us": _per_call_us(batched_call, seconds),
        }
        batched.stop()
    finally:
        drain.stdin.close()
        drain.wait(10)
    for figures in results.values():
        figures["ratio"] = round(figures["before_us"] / max(figures["after_us"], 1e-9), 1)
    return results
