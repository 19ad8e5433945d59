"""Rate limits in Redis: login attempts (per email, per client address, per device) and
signups (per client address). docs/ARCHITECTURE.md ("Brute force") has the reasons.

Each *subject* (an email, an address, a device cookie) has two sorted sets: ``…:a`` holds
its attempts of the last ``window`` seconds (score: when each stops counting) and ``…:p``
the attempts still in progress (score: when their lease ends). An attempt is *reserved* on
all its subjects, atomically, before the password is checked; a right password or an
answer without a verdict removes it again, a wrong one leaves it as a failure, and so does
an attempt whose result never reached Redis (its lease ends: fail closed).

- A subject with ``limit`` settled failures refuses with 429 ``too_many_attempts`` and a
  ``Retry-After`` until its oldest counting failure expires (a sliding window).
- A subject whose failures *plus attempts in progress* reach the limit makes a new attempt
  wait (polling) until those finish: a burst of guesses gets exactly ``limit`` checks, and a
  burst of right passwords (one user, or many behind one NAT) waits instead of failing.
- When Redis cannot record the attempt, nothing is checked: 503 ``unavailable``.

Every key has a TTL and at most ``limit`` members (reservations stop there), so no request
pattern grows Redis beyond one small bounded entry per subject and window.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet.task import deferLater

from shillings_web.config import WebConfig
from shillings_web.device import DeviceCookies
from shillings_web.errors import ApiError
from shillings_web.redisclient import Redis, RedisUnavailable

_RESERVE = """#!lua
-- The shebang (Redis >= 7) makes Redis refuse this script as a whole when it is out of
-- memory, instead of letting it write after a first write (old scripts' rule).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, window, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local strict = ARGV[5] == '1'
local wait, busy = 0, false
for i = 1, #KEYS, 2 do
  local a, p = KEYS[i], KEYS[i + 1]
  redis.call('ZREMRANGEBYSCORE', a, '-inf', now)
  redis.call('ZREMRANGEBYSCORE', p, '-inf', now)
  local live = {}
  if not strict then
    for _, m in ipairs(redis.call('ZRANGE', p, 0, -1)) do live[m] = true end
  end
  local settled = {}
  local all = redis.call('ZRANGE', a, 0, -1, 'WITHSCORES')
  for j = 1, #all, 2 do
    if not live[all[j]] then settled[#settled + 1] = tonumber(all[j + 1]) end
  end
  if #settled >= limit then
    local w = math.ceil(settled[#settled - limit + 1] - now)
    if w < 1 then w = 1 end
    if w > wait then wait = w end
  elseif #all / 2 >= limit then
    busy = true
  end
end
if wait > 0 then return wait end
if busy then return -1 end
for i = 1, #KEYS, 2 do
  redis.call('ZADD', KEYS[i], now + window, ARGV[4])
  redis.call('PEXPIRE', KEYS[i], math.ceil(window * 1000))
  if not strict then
    redis.call('ZADD', KEYS[i + 1], now + lease, ARGV[4])
    redis.call('PEXPIRE', KEYS[i + 1], math.ceil(lease * 1000))
  end
end
return 0
"""

_SETTLE = """
local id, outcome = ARGV[1], ARGV[2]
for i = 1, #KEYS, 2 do
  redis.call('ZREM', KEYS[i + 1], id)
  if outcome ~= 'fail' then redis.call('ZREM', KEYS[i], id) end
end
if outcome == 'ok' then
  local live = {}
  for _, m in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do live[m] = true end
  for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if not live[m] then redis.call('ZREM', KEYS[1], m) end
  end
end
return 1
"""

POLL_INTERVAL = 0.05
"""Seconds between two reservation tries of an attempt waiting for others to finish."""


def subject_keys(kind: str, value: str) -> list[str]:
    """The attempts and in-progress keys of one subject (``value`` hashed: any string is a
    valid, bounded key, lone surrogates included)."""
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return [f"shl:rl:{kind}:{digest}:a", f"shl:rl:{kind}:{digest}:p"]


@dataclass(frozen=True)
class Attempt:
    """One reserved attempt: its id and the keys of every subject it counts against."""

    keys: list[str]
    attempt_id: str


class Limiter:
    """At most ``limit`` attempts per subject per sliding ``window`` seconds.

    ``strict``: every attempt counts for good once reserved (signups: nothing to settle,
    nothing waits); otherwise only failures count (logins: settle every attempt) and a new
    attempt waits up to ``max_wait`` seconds while attempts in progress could still take
    the last places.
    """

    def __init__(
        self,
        redis: Redis,
        clock: Any,
        limit: int,
        window: int,
        lease: float,
        max_wait: float = 0.0,
        strict: bool = False,
        reason: str = "too_many_attempts",
        message: str = "too many failed login attempts, try again later",
    ) -> None:
        self._redis = redis
        self._clock = clock
        self._limit = limit
        self._window = window
        self._lease = lease
        self._max_wait = max_wait
        self._strict = strict
        self._reason = reason
        self._message = message
        self.refusals: Counter[str] = Counter()
        """Refused attempts so far: ``limit`` (429), ``unavailable`` (503)."""

    async def reserve(self, *subjects: list[str]) -> Attempt:
        """Count an attempt against every subject, or raise 429 (limit reached) or 503
        (Redis could not record it)."""
        keys = [key for pair in subjects for key in pair]
        attempt = Attempt(keys, secrets.token_hex(8))
        args = [self._limit, self._window, self._lease, attempt.attempt_id]
        args.append("1" if self._strict else "0")
        started = self._clock.seconds()
        while True:
            try:
                wait = int(await self._redis.execute("eval", _RESERVE, keys, args))
            except RedisUnavailable:
                self.refusals["unavailable"] += 1
                raise ApiError(
                    503,
                    "unavailable",
                    "cannot record this attempt right now (rate limit store unavailable);"
                    " try again",
                    {"Retry-After": "1"},
                ) from None
            if wait == 0:
                return attempt
            if wait < 0 and self._clock.seconds() - started < self._max_wait:
                await deferLater(self._clock, POLL_INTERVAL, lambda: None)
                continue
            self.refusals["limit"] += 1
            raise ApiError(
                429,
                self._reason,
                self._message,
                {"Retry-After": str(max(1, wait))},
            )

    async def settle(self, attempt: Attempt, outcome: str) -> None:
        """End an attempt: ``fail`` keeps it counted, ``ok`` (right password) removes it and
        clears the first subject's failures, ``void`` (no verdict) removes it. When Redis
        cannot take this, the attempt's lease ends and it counts as a failure."""
        try:
            await self._redis.execute("eval", _SETTLE, attempt.keys, [attempt.attempt_id, outcome])
        except RedisUnavailable:
            pass


class LoginGuard:
    """The login limits: a client with a valid device cookie for the email counts against
    its device only; any other client against the email and its address."""

    def __init__(self, limiter: Limiter, devices: DeviceCookies) -> None:
        self.devices = devices
        self.limiter = limiter

    async def reserve(self, request: Any, email: str, ip: str) -> Attempt:
        nonce = self.devices.verify(request, email)
        if nonce is not None:
            return await self.limiter.reserve(subject_keys("dev", nonce))
        return await self.limiter.reserve(subject_keys("email", email), subject_keys("ip", ip))

    async def settle(self, attempt: Attempt, outcome: str) -> None:
        await self.limiter.settle(attempt, outcome)


def limits(config: WebConfig, redis: Redis, clock: Any) -> tuple[LoginGuard, Limiter]:
    """The login guard and the signup limiter of a web process. An attempt's lease outlasts
    any answer of the app server; a login waits for attempts in progress at most one
    request timeout."""
    lease = 2 * config.request_timeout + 5
    logins = Limiter(
        redis,
        clock,
        config.login_max_failures,
        config.login_window,
        lease,
        max_wait=config.request_timeout,
    )
    signups = Limiter(
        redis,
        clock,
        config.signup_max,
        config.signup_window,
        lease,
        strict=True,
        reason="too_many_signups",
        message="too many signups from this address, try again later",
    )
    devices = DeviceCookies(config.jwt_secret, config.device_cookie_max_age, config.cookie_secure)
    return LoginGuard(logins, devices), signups
