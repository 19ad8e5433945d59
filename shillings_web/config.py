"""Web process configuration, read from environment variables in one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, unquote, urlsplit

from shillings_proto.envconfig import ConfigError, env_bool, env_int, env_seconds, jwt_secret

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


@dataclass(frozen=True)
class WebConfig:
    """Everything a web process needs to run; see the README for the variables."""

    listen: str
    app_servers: tuple[str, ...]
    redis: RedisAddress
    jwt_secret: str
    app_connections: int = 2
    cookie_secure: bool = False
    request_timeout: float = 5.0
    login_max_failures: int = 10
    login_window: int = 900
    device_cookie_max_age: int = 30 * 86400
    signup_max: int = 10
    signup_window: int = 3600
    app_secret: str | None = None
    trust_proxy: bool = False
    max_body: int = 64 * 1024
    redis_timeout: float = 1.0
    shutdown_grace: float = 5.0
    cache_grace: float = 10.0
    metrics_listen: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WebConfig:
        """Build the configuration from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        var = env.get("SHILLINGS_VAR") or "./var"
        redis_url = env.get("SHILLINGS_REDIS_URL") or (
            f"unix://{os.path.abspath(var)}/run/redis.sock"
        )
        secret = jwt_secret(env, var)
        servers = tuple(
            s.strip()
            for s in (env.get("SHILLINGS_APP_SERVERS") or DEFAULT_APP_SERVER).split(",")
            if s.strip()
        )
        if not servers:
            raise ConfigError("SHILLINGS_APP_SERVERS must name at least one app server")
        return cls(
            listen=env.get("SHILLINGS_WEB_LISTEN") or DEFAULT_LISTEN,
            app_servers=servers,
            redis=with_sentinels(parse_redis_url(redis_url), env),
            jwt_secret=secret,
            app_connections=env_int(env, "SHILLINGS_APP_CONNECTIONS", 2, 1, 64),
            cookie_secure=env_bool(env, "SHILLINGS_COOKIE_SECURE", False),
            request_timeout=env_seconds(env, "SHILLINGS_REQUEST_TIMEOUT", 5.0),
            login_max_failures=env_int(env, "SHILLINGS_LOGIN_MAX_FAILURES", 10, 1),
            login_window=env_int(env, "SHILLINGS_LOGIN_WINDOW", 900, 1),
            device_cookie_max_age=env_int(env, "SHILLINGS_DEVICE_COOKIE_MAX_AGE", 30 * 86400, 1),
            signup_max=env_int(env, "SHILLINGS_SIGNUP_MAX", 10, 1),
            signup_window=env_int(env, "SHILLINGS_SIGNUP_WINDOW", 3600, 1),
            app_secret=env.get("SHILLINGS_APP_SECRET") or None,
            trust_proxy=env_bool(env, "SHILLINGS_TRUST_PROXY", False),
            cache_grace=env_seconds(env, "SHILLINGS_CACHE_GRACE", 10.0),
            metrics_listen=env.get("SHILLINGS_METRICS_LISTEN") or None,
        )


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
