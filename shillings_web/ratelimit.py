"""Login rate limiting: failed logins counted per email and per client IP in Redis.

Fixed windows: the first failure starts a window of ``window`` seconds for its key; at
``max_failures`` failures within it, logins for that email or from that IP get 429 with
``Retry-After`` until the window ends. A successful login clears the email's counter (not
the IP's). When Redis is down the limiter fails open (the outage is logged by the client).
"""

from __future__ import annotations

import hashlib

from shillings_web.cache import Redis, RedisUnavailable
from shillings_web.errors import ApiError

_CHECK = """
local limit = tonumber(ARGV[1])
local wait = 0
for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n >= limit then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = 1 end
    if ttl > wait then wait = ttl end
  end
end
return wait
"""

_FAIL = """
for _, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 or redis.call('TTL', key) < 0 then
    redis.call('EXPIRE', key, ARGV[1])
  end
end
return 1
"""


def _email_key(email: str) -> str:
    return "shl:rl:email:" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def _ip_key(ip: str) -> str:
    return "shl:rl:ip:" + ip


class LoginLimiter:
    """Counts failed logins; refuses further attempts over the limit."""

    def __init__(self, redis: Redis, max_failures: int, window: int) -> None:
        self._redis = redis
        self._max = max_failures
        self._window = window

    async def check(self, email: str, ip: str) -> None:
        """Raise 429 ``too_many_attempts`` (with Retry-After) if either counter is at the limit."""
        try:
            wait = await self._redis.execute(
                "eval", _CHECK, [_email_key(email), _ip_key(ip)], [self._max]
            )
        except RedisUnavailable:
            return
        wait = int(wait)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_attempts",
                "too many failed login attempts, try again later",
                {"Retry-After": str(wait)},
            )

    async def failed(self, email: str, ip: str) -> None:
        try:
            await self._redis.execute(
                "eval", _FAIL, [_email_key(email), _ip_key(ip)], [self._window]
            )
        except RedisUnavailable:
            pass

    async def succeeded(self, email: str) -> None:
        try:
            await self._redis.execute("delete", _email_key(email))
        except RedisUnavailable:
            pass
