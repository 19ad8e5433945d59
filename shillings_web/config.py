"""Web process configuration, read from environment variables in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shillings_proto.envconfig import (
    LOG_LEVELS,
    REDIS_SOCKET,
    SHARED,
    ConfigError,
    Setting,
    choice,
    env_bool,
    env_seconds,
    ints,
    jwt_secret,
    read_settings,
    run_path,
    setting,
    settings_table,
)

__all__ = ["ConfigError", "RedisAddress", "WebConfig", "parse_redis_url"]

DEFAULT_LISTEN = "tcp:8081:interface=127.0.0.1"
DEFAULT_APP_SERVER = "tcp:127.0.0.1:7070"


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis listens: a unix socket path, or host and port; plus the database number."""

    unix_socket: str | None = None
    host: str = "127.0.0.1"
    port: int = 6379
    db: int = 0
    password: str | None = None
    sentinels: tuple[tuple[str, int], ...] = ()
    """When set, the primary of ``master_name`` is found (and followed) through these."""
    master_name: str = "shillings"

    def describe(self) -> str:
        if self.sentinels:
            where = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"primary {self.master_name!r} via sentinels {where}/{self.db}"
        where = f"unix:{self.unix_socket}" if self.unix_socket else f"{self.host}:{self.port}"
        return f"{where}/{self.db}"


def _servers(env: Mapping[str, str], name: str, default: Any) -> tuple[str, ...]:
    servers = tuple(s.strip() for s in (env.get(name) or default[0]).split(",") if s.strip())
    if not servers:
        raise ConfigError(f"{name} must name at least one app server")
    return servers


def _redis(env: Mapping[str, str], name: str, _default: Any) -> RedisAddress:
    url = env.get(name) or f"unix://{run_path(env, REDIS_SOCKET)}"
    return with_sentinels(parse_redis_url(url), env)


def _metrics(env: Mapping[str, str], name: str, _default: Any) -> str | None:
    return env.get(name) or None


@dataclass(frozen=True)
class WebConfig:
    """Everything a web process needs to run, each field read from its variable (the last
    few have no variable)."""

    listen: str = setting(
        "SHILLINGS_WEB_LISTEN",
        DEFAULT_LISTEN,
        "Twisted endpoint (the stack uses `unix:var/run/web_NN.sock`)",
        required=True,
    )
    app_servers: tuple[str, ...] = setting(
        "SHILLINGS_APP_SERVERS",
        (DEFAULT_APP_SERVER,),
        "comma-separated client endpoints of the app servers; mutual TLS:"
        " `ssl:host=H:port=P:caCertsDir=DIR:certKey=web.pem:privateKey=web.key:hostname=app-1`",
        _servers,
        required=True,
    )
    redis: RedisAddress = setting(
        "SHILLINGS_REDIS_URL",
        None,
        "`unix:///path?db=N` or `redis://[:password@]host[:port][/db]`",
        _redis,
        shown="`unix://$SHILLINGS_VAR/run/redis.sock`",
        required=True,
    )
    jwt_secret: str = setting(
        "SHILLINGS_JWT_SECRET",
        None,
        "must be the same secret as the app server's (at least 32 characters); if unset,"
        " read from / generated into the secret file",
        jwt_secret,
        required=True,
    )
    app_connections: int = setting(
        "SHILLINGS_APP_CONNECTIONS",
        2,
        "persistent connections per app server (calls use its first live one; the others"
        " are spares, ready when it is lost)",
        ints(1, 64),
    )
    cookie_secure: bool = setting(
        "SHILLINGS_COOKIE_SECURE",
        False,
        "add `Secure` to the token and device cookies (set it behind HTTPS)",
        env_bool,
    )
    request_timeout: float = setting(
        "SHILLINGS_REQUEST_TIMEOUT",
        5.0,
        "seconds a request may take at the app server, waiting for a connection included,"
        " before 503; sent to the app server as an absolute deadline (the hosts' clocks must"
        " agree, see docs/ARCHITECTURE.md)",
        env_seconds,
    )
    login_max_failures: int = setting(
        "SHILLINGS_LOGIN_MAX_FAILURES",
        10,
        "login rate limit: failures per window, per device cookie, else per email and per"
        " client address",
        ints(1),
    )
    login_window: int = setting(
        "SHILLINGS_LOGIN_WINDOW", 900, "the login limit's sliding window, seconds", ints(1)
    )
    device_cookie_max_age: int = setting(
        "SHILLINGS_DEVICE_COOKIE_MAX_AGE",
        30 * 86400,
        "lifetime of the device cookie a successful login sets, seconds",
        ints(1),
        shown="`2592000` (30 days)",
    )
    signup_max: int = setting(
        "SHILLINGS_SIGNUP_MAX",
        10,
        "signups per window per client address (raise it for test suites that sign up many"
        " users from one host)",
        ints(1),
    )
    signup_window: int = setting(
        "SHILLINGS_SIGNUP_WINDOW", 3600, "the signup limit's window, seconds", ints(1)
    )
    app_secret: str | None = setting(
        "SHILLINGS_APP_SECRET", None, "sent in the handshake frame when set"
    )
    trust_proxy: bool = setting(
        "SHILLINGS_TRUST_PROXY",
        False,
        "take the client IP from Nginx's `X-Real-IP`; leave it off when clients can reach the"
        " web process directly",
        env_bool,
        shown="`0` (the stack sets `1`)",
    )
    cache_grace: float = setting(
        "SHILLINGS_CACHE_GRACE",
        10.0,
        "seconds after Redis starts empty (restart, flush) during which profiles are not read"
        " from the cache",
        env_seconds,
    )
    metrics_listen: str | None = setting(
        "SHILLINGS_METRICS_LISTEN",
        None,
        "Twisted endpoint serving Prometheus metrics (`GET /metrics`); never the API's address",
        _metrics,
        shown="— (no metrics; the stack sets `tcp:93NN:interface=127.0.0.1`)",
    )
    log_level: str = setting(
        "SHILLINGS_LOG_LEVEL",
        "info",
        "`debug`, `info`, `warn`, `error`, `critical` (`--log-level` overrides it)",
        choice(LOG_LEVELS),
    )
    max_body: int = 64 * 1024
    redis_timeout: float = 1.0
    shutdown_grace: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebConfig:
        """Build the configuration from ``environ`` (default: ``os.environ``)."""
        return cls(**read_settings(cls, os.environ if environ is None else environ))

    @classmethod
    def table(cls) -> str:
        """The README's table of a web process's variables."""
        return settings_table(cls, (*SHARED, *SENTINELS))


def parse_redis_url(url: str) -> RedisAddress:
    """``unix:///path/redis.sock[?db=N]`` or ``redis://[:password@]host[:port][/db]``."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    if parts.scheme == "unix":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ConfigError(f"Redis URL must name a socket path: {url!r}")
        db = _db(query.get("db", ["0"])[-1], url)
        password = query.get("password", [None])[-1]
        return RedisAddress(unix_socket=path, db=db, password=password)
    if parts.scheme == "redis":
        try:
            port = parts.port or 6379
        except ValueError:
            raise ConfigError(f"bad port in Redis URL {url!r}") from None
        db_text = parts.path.lstrip("/") or query.get("db", ["0"])[-1]
        return RedisAddress(
            host=parts.hostname or "127.0.0.1",
            port=port,
            db=_db(db_text, url),
            password=unquote(parts.password) if parts.password else None,
        )
    raise ConfigError(f"Redis URL must start with unix:// or redis://, got {url!r}")


SENTINELS = (
    Setting(
        "SHILLINGS_REDIS_SENTINELS",
        None,
        "`host:port,…` of Redis Sentinels: the primary is found and followed through them (the"
        " URL then gives only db and password)",
        lambda env, name, _default: env.get(name),
    ),
    Setting(
        "SHILLINGS_REDIS_MASTER_NAME",
        "shillings",
        "the primary's name at the Sentinels",
        lambda env, name, default: env.get(name) or default,
    ),
)
"""Read by ``with_sentinels`` (part of ``SHILLINGS_REDIS_URL``'s setting)."""


def with_sentinels(address: RedisAddress, env: Mapping[str, str]) -> RedisAddress:
    """``address`` found through ``SHILLINGS_REDIS_SENTINELS`` (``host:port,...``) for
    ``SHILLINGS_REDIS_MASTER_NAME`` when set (the URL then gives only db and password)."""
    raw = env.get("SHILLINGS_REDIS_SENTINELS") or ""
    sentinels = []
    for item in (i.strip() for i in raw.split(",") if i.strip()):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"SHILLINGS_REDIS_SENTINELS: expected host:port, got {item!r}")
        sentinels.append((host.strip("[]"), int(port)))
    if not sentinels:
        return address
    name = env.get("SHILLINGS_REDIS_MASTER_NAME") or "shillings"
    return replace(address, sentinels=tuple(sentinels), master_name=name)


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ConfigError(f"bad database number in Redis URL {url!r}")
    return int(text)
