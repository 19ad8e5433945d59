"""Login rate limiting: failed logins counted per email and per client IP in Redis.

Fixed windows: the first counted attempt starts a window of ``window`` seconds for its key;
at ``max_failures`` within it, logins for that email or from that IP get 429 with
``Retry-After`` until the window ends. Each attempt *reserves* one count on its email before
the password is checked, so a burst of concurrent guesses at one account cannot slip past
the limit; a success clears the email's counter, and an attempt that ends without a verdict
(e.g. the app server is unavailable) gives its reservation back. The IP counts failures only
once they happen (many users may share one address, and their correct logins in flight must
not be refused). When Redis is down the limiter fails open (logged by the client).
"""

from __future__ import annotations

import hashlib

from shillings_web.cache import Redis, RedisUnavailable
from shillings_web.errors import ApiError

_RESERVE = """
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
if wait > 0 then return wait end
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_FAIL = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return n
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  local n = tonumber(redis.call('GET', key) or '0')
  if n > 0 then redis.call('DECR', key) end
end
return 1
"""


def _email_key(email: str) -> str:
    return "shl:rl:email:" + hashlib.sha256(email.encode("utf-8")).hexdigest()[:32]


def _ip_key(ip: str) -> str:
    return "shl:rl:ip:" + ip


class LoginLimiter:
    """Counts login attempts that failed or are in progress; refuses more over the limit."""

    def __init__(self, redis: Redis, max_failures: int, window: int) -> None:
        self._redis = redis
        self._max = max_failures
        self._window = window

    async def reserve(self, email: str, ip: str) -> bool:
        """Count this attempt against its email's limit, or raise 429 ``too_many_attempts``
        (with Retry-After) if the email's or the IP's limit is reached. False when Redis is
        down (nothing reserved)."""
        try:
            wait = await self._redis.execute(
                "eval", _RESERVE, [_email_key(email), _ip_key(ip)], [self._max, self._window]
            )
        except RedisUnavailable:
            return False
        wait = int(wait)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_attempts",
                "too many failed login attempts, try again later",
                {"Retry-After": str(wait)},
            )
        return True

    async def failed(self, ip: str) -> None:
        """A wrong password (the email's count was reserved already): count it for the IP."""
        try:
            await self._redis.execute("eval", _FAIL, [_ip_key(ip)], [self._window])
        except RedisUnavailable:
            pass

    async def succeeded(self, email: str) -> None:
        """A right password: clear the email's counter."""
        try:
            await self._redis.execute("delete", _email_key(email))
        except RedisUnavailable:
            pass

    async def release(self, email: str) -> None:
        """The attempt ended without a verdict on the password: give its reservation back."""
        try:
            await self._redis.execute("eval", _RELEASE, [_email_key(email)], [])
        except RedisUnavailable:
            pass
