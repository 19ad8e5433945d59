"""A guarded Redis client: every command fails fast (``RedisUnavailable``) instead of
waiting, reconnecting in the background, directly or through Sentinel."""

from __future__ import annotations

from collections import deque
from typing import Any, cast

import txredisapi
from twisted.internet.endpoints import HostnameEndpoint, UNIXClientEndpoint
from twisted.logger import Logger

from shillings_proto.eager import eager, hold_for_turn
from shillings_web.config import RedisAddress

log = Logger()


class RedisUnavailable(Exception):
    """Redis could not answer (not connected, timed out, or an error reply)."""


class RedisRefused(RedisUnavailable):
    """Redis answered with an error (e.g. OOM under ``maxmemory``, a read-only replica)."""


class _Watched:
    """Mixed into the Redis protocols: when each direct command waiting for its reply
    (``Redis._send``, in the order sent) times out, and the one timer that watches them."""

    deadlines: deque[float]
    watch: Any = None

    def connectionMade(self) -> Any:
        self.deadlines = deque()
        eager(cast(Any, self).transport)
        return super().connectionMade()  # type: ignore[misc]

    def connectionLost(self, why: Any) -> Any:
        if self.watch is not None and self.watch.active():
            self.watch.cancel()
        self.watch = None
        return super().connectionLost(why)  # type: ignore[misc]


class _Protocol(_Watched, txredisapi.RedisProtocol):
    pass


class _SentinelProtocol(_Watched, txredisapi.SentinelRedisProtocol):
    pass


class _Factory(txredisapi.RedisFactory):
    # Reconnect quickly after a Redis restart: 0.2 s, 0.5 s, 1.5 s, then every 2 s.
    initialDelay = 0.2
    maxDelay = 2.0
    protocol = _Protocol


class _SentinelFactory(txredisapi.SentinelConnectionFactory):
    # Follow a failover quickly: the next attempt asks the sentinels again.
    initialDelay = 0.1
    maxDelay = 1.0
    protocol = _SentinelProtocol


class _Sentinel(txredisapi.Sentinel):
    """txredisapi's Sentinel client, remembering the primary it last found."""

    discovery_timeout = 1

    def __init__(self, addresses: list[tuple[str, int]]) -> None:
        super().__init__(addresses)
        self.primary: tuple[str, int] | None = None

    def discover_master(self, service_name: str) -> Any:
        def found(address: tuple[str, int]) -> tuple[str, int]:
            self.primary = address
            return address

        return super().discover_master(service_name).addCallback(found)


_DIRECT = {"get": b"GET", "mget": b"MGET", "delete": b"DEL", "eval_keys": b"EVAL"}
"""txredisapi method (or, ``eval_keys``: ``EVAL script numkeys key… arg…`` with its words
as given) -> the Redis command ``Redis._send`` sends for it (with its arguments, lists
flattened)."""


def _answered(reply: Any, connection: _Watched) -> Any:
    """A direct command's reply (or failure) came: it no longer waits."""
    connection.deadlines.popleft()
    if isinstance(reply, Exception):
        raise reply
    return reply


def _expire(connection: Any, timeout: float) -> None:
    """No reply within ``timeout``: fail every waiting command, drop the connection."""
    error = txredisapi.TimeoutError(f"Not received Redis response in {timeout} seconds")
    while connection.replyQueue.waiting:
        connection.replyQueue.put(error)
    connection.transport.abortConnection()


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
        self._refused_logged_at = float("-inf")
        self._sentinel: _Sentinel | None = None

    @property
    def primary(self) -> str | None:
        """Through Sentinel: the primary in use, as ``host/port`` (None before one was found,
        and without Sentinel)."""
        found = self._sentinel.primary if self._sentinel is not None else None
        return None if found is None else f"{found[0]}/{found[1]}".replace(":", "_")

    def start(self) -> None:
        """Begin connecting (and reconnecting with back-off) in the background."""
        address = self._address
        if address.sentinels:
            self._sentinel = _Sentinel(list(address.sentinels))
            handler = self._sentinel.master_for(
                address.master_name,
                factory_class=_SentinelFactory,
                dbid=address.db or None,
                poolsize=self._poolsize,
                isLazy=True,
                password=address.password,
                replyTimeout=self._timeout,
                convertNumbers=False,
            )
            self._factory = handler._factory
            return
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
        if self._sentinel is not None:
            await self._sentinel.disconnect()

    @property
    def connected(self) -> bool:
        return self._factory is not None and self._factory.size > 0

    async def execute(self, command: str, *args: Any) -> Any:
        """Run one Redis command (a txredisapi method name) on the first live connection
        (where txredisapi's handler pipelines it too, but after a lookup per call); raise
        ``RedisUnavailable`` on any failure or on no reply within ``replyTimeout``
        (``RedisRefused``: an error reply). The commands of every request (``_DIRECT``) are
        sent by ``_send``, the rest through txredisapi."""
        live = [c for c in self._factory.pool if c.connected] if self._factory else []
        if not live:
            self._note_down(f"{command}: not connected")
            raise RedisUnavailable("not connected to Redis")
        try:
            direct = _DIRECT.get(command)
            if direct is not None:
                result = await self._send(live[0], direct, args)
            else:
                result = await getattr(live[0], command)(*args)
        except txredisapi.ResponseError as e:
            self._note_refused(command, e)
            raise RedisRefused(str(e)) from None
        except Exception as e:
            self._note_down(f"{command}: {e.__class__.__name__}: {e}")
            raise RedisUnavailable(str(e) or e.__class__.__name__) from None
        if not self._was_up:
            self._was_up = True
            log.info("Redis at {address} is reachable again", address=self._address.describe())
        return result

    def _send(self, connection: Any, name: bytes, args: tuple[Any, ...]) -> Any:
        """What txredisapi's ``execute_command`` does for a plain command, without its layers
        of Deferreds: write the command, take the next reply in the connection's queue
        (replies come in order), and give up after ``timeout`` the way it does (every waiting
        command fails and the connection is dropped)."""
        words = [w for arg in args for w in (arg if isinstance(arg, list) else [arg])]
        command = [b"*%d\r\n$%d\r\n%s\r\n" % (len(words) + 1, len(name), name)]
        for word in words:
            data = word.encode() if isinstance(word, str) else word
            command.append(b"$%d\r\n%s\r\n" % (len(data), data))
        if connection.deadlines:
            hold_for_turn(connection.transport)  # busy: more commands may follow this turn
        connection.transport.write(b"".join(command))
        connection.deadlines.append(self._reactor.seconds() + self._timeout)
        if connection.watch is None:
            connection.watch = self._reactor.callLater(self._timeout, self._check, connection)
        return connection.replyQueue.get().addBoth(_answered, connection)

    def _check(self, connection: _Watched) -> None:
        """The watch of ``connection`` fired: expire it if its oldest waiting direct command
        is past its deadline, else watch again until that deadline (none waiting: stop).
        One timer per connection, not one per command: a command that is answered in time
        costs no timer of its own."""
        connection.watch = None
        if connection.deadlines:
            left = connection.deadlines[0] - self._reactor.seconds()
            if left > 0:
                connection.watch = self._reactor.callLater(left, self._check, connection)
            else:
                _expire(connection, self._timeout)

    def _note_refused(self, command: str, error: Exception) -> None:
        """Log a refusal (e.g. OOM) at most once a minute: a full Redis refuses every write."""
        now = self._reactor.seconds()
        if now - self._refused_logged_at >= 60.0:
            self._refused_logged_at = now
            log.warn("Redis refused {command}: {error}", command=command, error=str(error))

    def _note_down(self, why: str) -> None:
        if self._was_up:
            self._was_up = False
            log.warn(
                "Redis at {address} unavailable ({why}); serving without cache",
                address=self._address.describe(),
                why=why,
            )
