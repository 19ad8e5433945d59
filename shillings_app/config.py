"""Application server configuration, read from environment variables in one place."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shillings_proto.envconfig import ConfigError, env_choice, env_int, jwt_secret

DEFAULT_LISTEN = "tcp:7070:interface=127.0.0.1"


@dataclass(frozen=True)
class TlsFiles:
    """Mutual TLS on the listening endpoint: this server's certificate and key, and the CA
    whose client certificates it accepts (no other client gets past the handshake)."""

    cert: str
    key: str
    client_ca: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TlsFiles | None:
        names = ("SHILLINGS_APP_TLS_CERT", "SHILLINGS_APP_TLS_KEY", "SHILLINGS_APP_TLS_CA")
        values = [env.get(name) or "" for name in names]
        if not any(values):
            return None
        if not all(values):
            raise ConfigError(f"TLS needs all of {', '.join(names)}")
        for name, path in zip(names, values, strict=True):
            if not os.path.isfile(path):
                raise ConfigError(f"{name}: no such file {path!r}")
        return cls(*values)


@dataclass(frozen=True)
class AppConfig:
    """Everything the app server needs to run; see the README for the variables."""

    listen: str
    mysql_dsn: str
    jwt_secret: str
    token_ttl: int = 3600
    bcrypt_cost: int = 12
    password_workers: int = 2
    password_queue: int = 8
    app_secret: str | None = None
    db_pool_min: int = 3
    db_pool_max: int = 10
    db_sync_wait: int = 0
    tls: TlsFiles | None = None
    idle_timeout: float = 60.0
    log_level: str = "info"
    metrics_listen: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppConfig:
        """Build the configuration from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        var = env.get("SHILLINGS_VAR", "./var")
        dsn = mysql_dsn(env)
        secret = jwt_secret(env, var)
        pool_min = env_int(env, "SHILLINGS_DB_POOL_MIN", 3, 1)
        pool_max = env_int(env, "SHILLINGS_DB_POOL_MAX", 10, 1)
        if pool_max < pool_min:
            raise ConfigError("SHILLINGS_DB_POOL_MAX must be >= SHILLINGS_DB_POOL_MIN")
        config = cls(
            listen=env.get("SHILLINGS_APP_LISTEN") or DEFAULT_LISTEN,
            mysql_dsn=dsn,
            jwt_secret=secret,
            token_ttl=env_int(env, "SHILLINGS_TOKEN_TTL", 3600, 1),
            bcrypt_cost=env_int(env, "SHILLINGS_BCRYPT_COST", 12, 4, 31),
            password_workers=env_int(
                env, "SHILLINGS_PASSWORD_WORKERS", max(2, os.cpu_count() or 2), 1, 256
            ),
            password_queue=env_int(env, "SHILLINGS_PASSWORD_QUEUE", 8, 0, 10_000),
            app_secret=env.get("SHILLINGS_APP_SECRET") or None,
            db_pool_min=pool_min,
            db_pool_max=pool_max,
            db_sync_wait=env_int(env, "SHILLINGS_DB_SYNC_WAIT", 0, 0, 15),
            tls=TlsFiles.from_env(env),
            idle_timeout=float(env_int(env, "SHILLINGS_APP_IDLE_TIMEOUT", 60, 1)),
            log_level=env_choice(env, "SHILLINGS_LOG_LEVEL", "info", LOG_LEVELS),
            metrics_listen=env.get("SHILLINGS_METRICS_LISTEN") or None,
        )
        if (
            config.app_secret is None
            and config.tls is None
            and not is_private_endpoint(config.listen)
        ):
            raise ConfigError(
                f"SHILLINGS_APP_LISTEN={config.listen!r} is reachable beyond this machine:"
                " set SHILLINGS_APP_TLS_CERT, _KEY and _CA (mutual TLS) or SHILLINGS_APP_SECRET,"
                " so that only web processes that prove who they are are served"
            )
        return config


def mysql_dsn(environ: Mapping[str, str] | None = None) -> str:
    """``SHILLINGS_MYSQL_DSN``, else the embedded MariaDB's socket under ``SHILLINGS_VAR``;
    checked (``ConfigError``). All ``reconcile`` reads, so it never creates a JWT secret."""
    env = os.environ if environ is None else environ
    var = env.get("SHILLINGS_VAR", "./var")
    dsn = env.get("SHILLINGS_MYSQL_DSN") or (
        f"mysql://root@localhost/shillings?unix_socket={os.path.abspath(var)}/run/mysqld.sock"
    )
    parse_dsn(dsn)
    return dsn


LOG_LEVELS = ("debug", "info", "warn", "error", "critical")

_INTERFACE = re.compile(r"(?:^|:)interface=((?:[^:\\]|\\.)*)")


def is_private_endpoint(listen: str) -> bool:
    """True for a unix socket or a TCP endpoint bound to a loopback interface only."""
    kind = listen.split(":", 1)[0]
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6"):
        return False
    match = _INTERFACE.search(listen)
    interface = match.group(1).replace("\\:", ":") if match else ""
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def parse_dsn(dsn: str) -> dict[str, Any]:
    """Turn ``mysql://user[:password]@host[:port]/database[?unix_socket=/path]`` into
    ``pymysql.connect`` keyword arguments."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ConfigError(f"MySQL DSN must start with mysql://, got {dsn!r}")
    database = unquote(parts.path.lstrip("/"))
    if not database or "/" in database or "`" in database:
        raise ConfigError(f"MySQL DSN must name one database: {dsn!r}")
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": database,
        "charset": "utf8mb4",
    }
    try:
        if parts.port is not None:
            kwargs["port"] = parts.port
    except ValueError:
        raise ConfigError(f"bad port in MySQL DSN {dsn!r}") from None
    query = parse_qs(parts.query)
    if "unix_socket" in query:
        kwargs["unix_socket"] = query["unix_socket"][-1]
    return kwargs
