"""The cache of authenticated users' profiles in Redis (``redisclient``).

Scheme (docs/ARCHITECTURE.md): ``shl:prof:<jti>`` holds ``G\nE\nUNTIL\n{user JSON}`` (the
user's JSON text as answered, so a hit is served without decoding or encoding it) with a
TTL of the token's remaining life; ``shl:gen:<hash of the email>`` holds the
user's current data generation, a random value (by email, so a payment can invalidate its
receiver without knowing the receiver's id, even when the app server's answer was lost).
An entry is used only when its ``gen`` equals the current generation. Pay, top-up and
logout invalidate by deleting the generation before the web layer answers; a later read
creates a new random one, so an older entry can never match again, and a pay to an email
nobody reads creates no key at all. An operation whose users are unknown (its answer was
lost) replaces the epoch instead (``bump_all``). An entry also carries when the profile
changes by itself (``until``: one of the user's holds expires) and is not read after it.
Redis is an optimisation: when it is down every call
raises ``RedisUnavailable`` at once (never hangs) and callers fall back to the app server.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger

from shillings_web.auth import Identity
from shillings_web.errors import encode_text
from shillings_web.redisclient import Redis, RedisUnavailable

log = Logger()

TOKEN_KEY = "shl:prof:{}"
EPOCH_KEY = "shl:epoch"
PROBE_KEY = "shl:probe"
"""Written by every web process's watch (``ProfileCache.start``): does Redis take writes?"""
PROBE_TTL = 10
MAX_PENDING = 1000
"""Invalidations one process keeps for retry; past this it resets the whole cache instead."""


@functools.lru_cache(maxsize=8192)
def gen_key(email: str) -> str:
    """The generation key of a user: a hash of the lower-cased email, so any string (lone
    surrogates included) makes a valid key of bounded length."""
    digest = hashlib.sha256(email.lower().encode("utf-8", "surrogatepass")).hexdigest()
    return "shl:gen:" + digest[:32]


_REPLACE_EPOCH = (
    "#!lua\n"
    "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2])"
    " return 1 end return 0"
)
"""Replace the epoch only if it is still the one read (one new epoch per new primary)."""

_READ = "#!lua\nreturn redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])"
"""A lookup's read (``MGET`` of entry, generation, epoch) as a script without the
``no-writes`` flag, which Redis refuses whenever it refuses writes (``NOREPLICAS`` when
``min-replicas-to-write`` is unmet, ``READONLY`` on a demoted primary; paused with writes
by ``CLIENT PAUSE WRITE``). A plain ``MGET`` would be served: then another web process,
whose invalidation Redis refused after a pay or a logout, could not stop this one from
serving the stale profile or the revoked token."""

_RESET_EPOCH = (
    "#!lua\n"
    "local old = redis.call('GET', KEYS[1]) if not old then return 0 end"
    " redis.call('SET', KEYS[1], ARGV[1] .. string.match(old, '^%x*(.*)$'))"
    " return 1"
)
"""Outdate every entry (``ProfileCache.outdate_all``): give the epoch, if there is one, a new
random part (``ARGV[1]``, its leading hex digits) and keep the rest, the primary it names
and its start time: a grace period under way goes on, and a promoted primary still gets
its own epoch."""


@dataclass(frozen=True)
class Lookup:
    """A cache read: the cached profile (its JSON text) if fresh, and the generation to
    store a refill with."""

    user: str | None
    gen: str | None
    epoch: str | None = None


class ProfileCache:
    """The per-token profile cache with per-user (by email) generations.

    An invalidation that cannot reach Redis is kept and retried every ``retry_interval``
    seconds until Redis takes it; until then this process reads no profile from the cache.
    At most ``MAX_PENDING`` are kept: past that, the process outdates the whole cache instead,
    so no input and no outage can grow or poison this state for good.

    What one process kept dies with it, and another may have missed a failure. So a process
    also outdates every entry (``outdate_all``, before it reads any) when it starts (its
    previous run may have died holding invalidations), and after any failed read or write
    probe (``start``: Redis was away or refused writes, so another process's invalidations
    may have been refused too, and that process may be gone when Redis takes writes again).
    A process that stops delivers what it holds first (``settle``).
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
        self._pending: set[str] = set()
        self._outdates_asked = 1
        """``outdate_all`` calls so far (the first: at start); ``_outdates_done`` of them
        Redis has acknowledged."""
        self._outdates_done = 0
        self._owed = False
        """An ``outdate_all`` pending stands for invalidations (``bump_all``, or keys it
        subsumed), not only for this process's own caution."""
        self._flushing = False
        self._watching = False
        self._retry: Any = None
        self.outcomes: Counter[str] = Counter()
        """Lookups so far: ``hit`` (profile read), ``miss`` (to be filled), ``bypass``."""

    @property
    def pending(self) -> int:
        """Invalidations Redis has not acknowledged yet: keys to delete, and 1 for an
        outdating of every entry."""
        return len(self._pending) + (self._outdates_done < self._outdates_asked)

    def start(self) -> None:
        """Watch Redis every ``retry_interval`` s until ``stop``, requests or not: deliver
        what is pending (first the start's ``outdate_all``); with nothing pending, probe that
        Redis takes a write, and ``outdate_all`` when it does not (so a process that served
        no request while Redis refused writes still reads nothing another could not
        invalidate)."""
        self._watching = True
        self._schedule()

    async def lookup(self, identity: Identity) -> Lookup:
        """The cached profile if its generation and Redis epoch are current. ``gen`` is None
        (nothing may be read or filled: a bypass) if Redis failed, an invalidation of this
        process is still pending, or Redis started empty less than ``epoch_grace`` seconds
        ago."""
        found = await self._lookup(identity)
        hit_or_miss = "hit" if found.user is not None else "miss"
        self.outcomes[hit_or_miss if found.gen is not None else "bypass"] += 1
        return found

    async def _lookup(self, identity: Identity) -> Lookup:
        if self.pending and (self._flushing or not await self.flush()):
            return Lookup(None, None)
        token_key = TOKEN_KEY.format(identity.token_id)
        user_gen_key = gen_key(identity.email)
        try:
            entry, gen, epoch = await self._redis.execute(
                "eval_keys", _READ, "3", [token_key, user_gen_key, EPOCH_KEY]
            )
        except RedisUnavailable:
            self.outdate_all()
            return Lookup(None, None)
        primary = self._redis.primary
        if epoch is None or (primary is not None and f"@{primary}:" not in str(epoch)):
            # Redis started empty, or this primary was promoted (Sentinel) and may lack the
            # last writes of the one before: a new epoch, then the grace period.
            epoch = await self._start_epoch(primary, epoch)
        if not self._epoch_settled(epoch):
            return Lookup(None, None)
        if gen is None:
            return Lookup(None, await self._new_gen(user_gen_key, identity), epoch)
        if entry is None:
            return Lookup(None, gen, epoch)
        try:
            entry_gen, entry_epoch, until, user = entry.split("\n", 3)
            if (
                entry_gen == gen
                and entry_epoch == epoch
                and user[:1] == "{"
                and user[-1:] == "}"
                and self._clock.seconds() < float(until or "inf")
            ):
                return Lookup(user, gen, epoch)
        except (ValueError, TypeError, AttributeError):
            log.warn("discarding malformed cache entry {key}", key=token_key)
        return Lookup(None, gen, epoch)

    async def _new_gen(self, key: str, identity: Identity) -> str | None:
        """Start a new generation for a user that has none (created before the profile is
        fetched, so an invalidation in between deletes it and outdates the fill); None
        when another request was first or Redis refused."""
        gen = secrets.token_hex(8)
        ttl = identity.seconds_left(self._clock.seconds())
        try:
            created = await self._redis.execute("set", key, gen, ttl, None, True)
        except RedisUnavailable:
            return None
        return gen if created is not None else None

    def _epoch_settled(self, epoch: Any) -> bool:
        """True when Redis has held its data (the epoch) for at least ``epoch_grace`` s."""
        if not isinstance(epoch, str):
            return False
        try:
            started = float(epoch.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return False
        return self._clock.seconds() - started >= self._epoch_grace

    async def _start_epoch(self, primary: str | None, old: Any) -> str | None:
        """Mark an empty Redis, or a new primary, with a new epoch (naming the primary when
        it is known) and return it; None when another web process was first (or Redis
        failed)."""
        tag = f"@{primary}" if primary is not None else ""
        epoch = f"{secrets.token_hex(4)}{tag}:{self._clock.seconds()!r}"
        try:
            if old is None:
                started = await self._redis.execute("set", EPOCH_KEY, epoch, None, None, True)
            else:
                started = await self._redis.execute(
                    "eval", _REPLACE_EPOCH, [EPOCH_KEY], [old, epoch]
                )
            if started in (None, 0, "0"):
                return None
        except RedisUnavailable:
            return None
        log.info(
            "Redis holds no cache epoch of this primary ({primary}): no cache reads for {grace}s",
            primary=primary or "started or flushed",
            grace=self._epoch_grace,
        )
        return epoch

    async def fill(
        self, identity: Identity, lookup: Lookup, user: dict[str, Any], until: float = 0.0
    ) -> None:
        """Store ``user`` under the generation and epoch its ``lookup`` read *before* it was
        fetched; nothing when that lookup may not be filled. ``until`` (unix seconds; 0:
        none) is when the profile changes by itself (a hold of the user's expires): the
        entry is not read from then on."""
        if lookup.gen is None or lookup.epoch is None:
            return
        now = self._clock.seconds()
        ttl = identity.seconds_left(now)
        if until:
            if until <= now:
                return
            ttl = max(1, min(ttl, math.ceil(until - now)))
        expiry = repr(until) if until else ""
        value = f"{lookup.gen}\n{lookup.epoch}\n{expiry}\n{encode_text(user)}"
        try:
            await self._redis.execute("set", TOKEN_KEY.format(identity.token_id), value, ttl)
        except RedisUnavailable:
            pass

    async def bump(self, *emails: str) -> None:
        """Invalidate every cached profile of the users with these emails (delete their
        generations); what fails is retried in the background."""
        await self._delete({gen_key(email) for email in emails})

    async def bump_all(self) -> None:
        """Invalidate every cached profile at once (a change whose users are unknown, e.g.
        its answer was lost): ``outdate_all`` and deliver it now (else in the background)."""
        self._owed = True
        self.outdate_all()
        if not await self.flush():
            log.warn("could not outdate the cached profiles; will retry")

    def outdate_all(self) -> None:
        """Outdate every entry before this process reads the cache again: give the epoch a
        new random part (``_RESET_EPOCH``), keeping the rest, so the cache serves again at
        once unless a grace period is under way. When Redis holds no epoch, the
        next lookup starts one (with its grace period) anyway."""
        self._outdates_asked += 1
        if self._pending:
            self._owed = True
            self._pending.clear()  # subsumed
        self._schedule()

    async def forget(self, identity: Identity) -> None:
        """Drop the token's entry after logout, and outdate any concurrent refill of it."""
        await self._delete({gen_key(identity.email), TOKEN_KEY.format(identity.token_id)})

    async def flush(self) -> bool:
        """Retry the pending invalidations once; True when none is left. Each stays pending
        (and this process off the cache) until Redis has acknowledged it."""
        keys = set(self._pending)
        asked = self._outdates_asked
        self._flushing = True
        try:
            if keys:
                await self._redis.execute("delete", sorted(keys))
                self._pending -= keys
            if self._outdates_done < asked:
                await self._redis.execute("eval", _RESET_EPOCH, [EPOCH_KEY], [secrets.token_hex(4)])
                self._outdates_done = max(self._outdates_done, asked)
                self._owed = self._owed and self._outdates_done < self._outdates_asked
        except RedisUnavailable:
            pass
        finally:
            self._flushing = False
        if self.pending:
            self._schedule()
            return False
        if keys:
            log.info("cache invalidations caught up ({count})", count=len(keys))
        return True

    @property
    def owed(self) -> int:
        """Pending invalidations that others depend on (``pending`` less this process's
        own caution): keys to delete, and 1 for an owed outdating of every entry."""
        return len(self._pending) + self._owed

    async def settle(self, within: float) -> int:
        """Before the process stops: retry what is ``owed`` every ``retry_interval`` s for
        up to ``within`` s; the count left (logged: those users' cached profiles may be read
        stale by the other web processes until Redis is flushed)."""
        deadline = self._clock.seconds() + within
        while self.owed and not await self.flush():
            if self._clock.seconds() >= deadline:
                break
            await task.deferLater(self._clock, self._retry_interval)
        if self.owed:
            log.error(
                "stopping with {count} cache invalidations Redis did not take: other web"
                " processes may serve stale profiles until Redis is flushed",
                count=self.owed,
            )
        return self.owed

    def stop(self) -> None:
        """Stop the watch (what is still pending is dropped with the process: ``settle``
        first)."""
        self._watching = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None

    async def _delete(self, keys: set[str]) -> None:
        """DEL ``keys`` (one command); on failure keep them for the background retry, or,
        past ``MAX_PENDING`` (or with an outdating pending anyway), outdate every entry."""
        try:
            await self._redis.execute("delete", sorted(keys))
            return
        except RedisUnavailable as e:
            log.warn(
                "could not invalidate {count} cache keys ({why}); will retry",
                count=len(keys),
                why=str(e),
            )
        self._pending |= keys
        if self._outdates_done < self._outdates_asked:
            self.outdate_all()  # asked again: one in flight may have reached Redis already
        elif len(self._pending) > MAX_PENDING:
            log.warn(
                "{count} cache invalidations pending: outdating the whole cache instead",
                count=len(self._pending),
            )
            self.outdate_all()
        self._schedule()

    def _schedule(self) -> None:
        if self._retry is None or not self._retry.active():
            self._retry = self._clock.callLater(self._retry_interval, self._flush_later)

    def _flush_later(self) -> None:
        self._retry = None
        defer.ensureDeferred(self._watch()).addErrback(
            lambda f: log.failure("retrying cache invalidations failed", f)
        )

    async def _watch(self) -> None:
        """One turn of the watch (``start``), or a retry of what is pending."""
        if self.pending:
            await self.flush()
        elif self._watching:
            try:
                await self._redis.execute("set", PROBE_KEY, "1", PROBE_TTL)
            except RedisUnavailable:
                self.outdate_all()
        if self._watching:
            self._schedule()
