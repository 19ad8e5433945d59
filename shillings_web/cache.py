"""Redis: a guarded client, and the cache of authenticated users' profiles.

Scheme (docs/ARCHITECTURE.md): ``shl:tok:<jti>`` holds ``{"gen": N, "user": {...}}`` with
a TTL of the token's remaining life; ``shl:gen:<email>`` is the user's data generation (by
email, so a payment can invalidate its receiver without knowing the receiver's id, even
when the app server's answer was lost).
An entry is used only when its ``gen`` equals the current generation, which pay, top-up
and logout bump before the web layer answers. Redis is an optimisation: when it is down
every call raises ``RedisUnavailable`` at once (never hangs) and callers fall back to the
app server.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

import txredisapi
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.logger import Logger

from shillings_web.auth import Identity
from shillings_web.config import RedisAddress

log = Logger()

TOKEN_KEY = "shl:tok:{}"
GEN_KEY = "shl:gen:{}"
EPOCH_KEY = "shl:epoch"


class RedisUnavailable(Exception):
    """Redis could not answer (not connected, timed out, or an error reply)."""


class _Factory(txredisapi.RedisFactory):
    # Reconnect quickly after a Redis restart: 0.2 s, 0.5 s, 1.5 s, then every 2 s.
    initialDelay = 0.2
    maxDelay = 2.0


class Redis:
    """A txredisapi connection pool whose every command fails fast instead of waiting."""

    def __init__(
        self, address: RedisAddress, reactor: Any, timeout: float = 1.0, poolsize: int = 2
    ) -> None:
        self._address = address
        self._reactor = reactor
        self._timeout = timeout
        self._poolsize = poolsize
        self._factory: _Factory | None = None
        self._was_up = True

    def start(self) -> None:
        """Begin connecting (and reconnecting with back-off) in the background."""
        address = self._address
        factory = _Factory(
            address.describe(),
            address.db or None,
            self._poolsize,
            isLazy=True,
            handler=txredisapi.ConnectionHandler,
            password=address.password,
            replyTimeout=self._timeout,
            convertNumbers=False,
        )
        if address.unix_socket:
            endpoint: Any = UNIXClientEndpoint(
                self._reactor, address.unix_socket, timeout=self._timeout
            )
        else:
            endpoint = HostnameEndpoint(
                self._reactor, address.host, address.port, timeout=self._timeout
            )
        factory.startConnecting(endpoint)
        self._factory = factory

    async def stop(self) -> None:
        if self._factory is not None:
            factory, self._factory = self._factory, None
            await factory.disconnect()

    @property
    def connected(self) -> bool:
        return self._factory is not None and self._factory.size > 0

    async def execute(self, command: str, *args: Any) -> Any:
        """Run one Redis command; raise ``RedisUnavailable`` on any failure or timeout."""
        if self._factory is None or self._factory.size == 0:
            self._note_down(f"{command}: not connected")
            raise RedisUnavailable("not connected to Redis")
        d = getattr(self._factory.handler, command)(*args)
        d.addTimeout(self._timeout, self._reactor)
        try:
            result = await d
        except Exception as e:
            self._note_down(f"{command}: {e.__class__.__name__}: {e}")
            raise RedisUnavailable(str(e) or e.__class__.__name__) from None
        if not self._was_up:
            self._was_up = True
            log.info("Redis at {address} is reachable again", address=self._address.describe())
        return result

    def _note_down(self, why: str) -> None:
        if self._was_up:
            self._was_up = False
            log.warn(
                "Redis at {address} unavailable ({why}); serving without cache",
                address=self._address.describe(),
                why=why,
            )


@dataclass(frozen=True)
class Lookup:
    """A cache read: the cached profile if fresh, and the generation to store a refill with."""

    user: dict[str, Any] | None
    gen: int | None
    epoch: str | None = None


class ProfileCache:
    """The per-token profile cache with per-user (by email) generation counters.

    An invalidation that cannot reach Redis is kept and retried every ``retry_interval``
    seconds until Redis takes it; until then this process reads no profile from the cache.
    """

    def __init__(
        self, redis: Redis, clock: Any, retry_interval: float = 0.5, epoch_grace: float = 10.0
    ) -> None:
        """``epoch_grace``: seconds after Redis starts empty (restart, flush) during which no
        profile is read from it: time for every web process that missed an invalidation
        while Redis was away to reconnect (back-off at most 2 s) and replay it."""
        self._redis = redis
        self._clock = clock
        self._retry_interval = retry_interval
        self._epoch_grace = epoch_grace
        self._pending_gens: set[str] = set()
        self._pending_tokens: set[str] = set()
        self._retry: Any = None

    @property
    def pending(self) -> int:
        """Invalidations not yet acknowledged by Redis."""
        return len(self._pending_gens) + len(self._pending_tokens)

    async def lookup(self, identity: Identity) -> Lookup:
        """The cached profile if its generation and Redis epoch are current. ``gen`` is None
        (nothing may be read or filled) if Redis failed, an invalidation of this process is
        still pending, or Redis started empty less than ``epoch_grace`` seconds ago."""
        if self.pending:
            return Lookup(None, None)
        token_key = TOKEN_KEY.format(identity.token_id)
        gen_key = GEN_KEY.format(identity.email.lower())
        try:
            entry, gen_value, epoch = await self._redis.execute(
                "mget", [token_key, gen_key, EPOCH_KEY]
            )
        except RedisUnavailable:
            return Lookup(None, None)
        if epoch is None:
            epoch = await self._start_epoch()
        if not self._epoch_settled(epoch):
            return Lookup(None, None)
        gen = _as_int(gen_value)
        if entry is None:
            return Lookup(None, gen, epoch)
        try:
            cached = json.loads(entry)
            if (
                cached["gen"] == gen
                and cached["epoch"] == epoch
                and isinstance(cached["user"], dict)
            ):
                return Lookup(cached["user"], gen, epoch)
        except (ValueError, TypeError, KeyError):
            log.warn("discarding malformed cache entry {key}", key=token_key)
        return Lookup(None, gen, epoch)

    def _epoch_settled(self, epoch: Any) -> bool:
        """True when Redis has held its data (the epoch) for at least ``epoch_grace`` s."""
        if not isinstance(epoch, str):
            return False
        try:
            started = float(epoch.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return False
        return self._clock.seconds() - started >= self._epoch_grace

    async def _start_epoch(self) -> str | None:
        """Mark an empty Redis with a new epoch and return it; None when another web
        process was first (or Redis failed)."""
        epoch = f"{secrets.token_hex(4)}:{self._clock.seconds()!r}"
        try:
            if await self._redis.execute("set", EPOCH_KEY, epoch, None, None, True) is None:
                return None
        except RedisUnavailable:
            return None
        log.info(
            "Redis holds no cache epoch (started or flushed): no cache reads for {grace}s",
            grace=self._epoch_grace,
        )
        return epoch

    async def fill(self, identity: Identity, lookup: Lookup, user: dict[str, Any]) -> None:
        """Store ``user`` under the generation and epoch its ``lookup`` read *before* it was
        fetched; nothing when that lookup may not be filled."""
        if lookup.gen is None or lookup.epoch is None:
            return
        ttl = identity.seconds_left(self._clock.seconds())
        value = json.dumps(
            {"gen": lookup.gen, "epoch": lookup.epoch, "user": user}, separators=(",", ":")
        )
        try:
            await self._redis.execute("set", TOKEN_KEY.format(identity.token_id), value, ttl)
        except RedisUnavailable:
            pass

    async def bump(self, *emails: str) -> None:
        """Invalidate every cached profile of the users with these emails (INCR their
        generations); what fails is retried in the background."""
        failed = await self._incr({email.lower() for email in emails})
        if failed:
            log.warn("could not invalidate cached profiles of {emails}; will retry", emails=failed)
            self._pending_gens.update(failed)
            self._schedule()

    async def forget(self, identity: Identity) -> None:
        """Drop the token's entry after logout, and outdate any concurrent refill of it."""
        await self.bump(identity.email)
        key = TOKEN_KEY.format(identity.token_id)
        try:
            await self._redis.execute("delete", [key])
        except RedisUnavailable:
            log.warn(
                "could not drop cached profile of revoked token of user {user_id}; will retry",
                user_id=identity.user_id,
            )
            self._pending_tokens.add(key)
            self._schedule()

    async def flush(self) -> bool:
        """Retry the pending invalidations once; True when none is left. Each stays pending
        (and this process off the cache) until Redis has acknowledged it."""
        gens = set(self._pending_gens)
        self._pending_gens -= gens - set(await self._incr(gens))
        tokens = set(self._pending_tokens)
        if tokens:
            try:
                await self._redis.execute("delete", sorted(tokens))
                self._pending_tokens -= tokens
            except RedisUnavailable:
                pass
        if self.pending:
            self._schedule()
            return False
        if gens or tokens:
            log.info("cache invalidations caught up ({count})", count=len(gens) + len(tokens))
        return True

    def stop(self) -> None:
        """Cancel the background retry (pending invalidations are dropped with the process)."""
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    def _schedule(self) -> None:
        if self._retry is None or not self._retry.active():
            self._retry = self._clock.callLater(self._retry_interval, self._flush_later)

    def _flush_later(self) -> None:
        self._retry = None
        defer.ensureDeferred(self.flush()).addErrback(
            lambda f: log.failure("retrying cache invalidations failed", f)
        )

    async def _incr(self, keys: set[str]) -> list[str]:
        """INCR the generation of each email; return those that failed."""
        ordered = sorted(keys)
        results = await defer.DeferredList(
            [defer.ensureDeferred(self._redis.execute("incr", GEN_KEY.format(k))) for k in ordered],
            consumeErrors=True,
        )
        return [k for k, (ok, _) in zip(ordered, results, strict=True) if not ok]


def _as_int(value: Any) -> int:
    if value is None:
        return 0
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
