"""Application server configuration, read from environment variables in one place."""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from shillings_app.webhooks import resolver
from shillings_app.webhooks.allow import Allow, AllowError, parse_allow
from shillings_app.webhooks.secrets import KEY_VARIABLE, WebhookKeyError, configured_key
from shillings_proto.envconfig import (
    LOG_LEVELS,
    MYSQL_SOCKET,
    SHARED,
    ConfigError,
    Setting,
    choice,
    env_int,
    ints,
    jwt_secret,
    read_settings,
    run_path,
    setting,
    settings_table,
)

__all__ = ["LOG_LEVELS", "AppConfig", "ConfigError", "mysql_dsn", "parse_dsn"]

DEFAULT_LISTEN = "tcp:7070:interface=127.0.0.1"

WEBHOOK_KEY_FILE = Setting(
    f"{KEY_VARIABLE}_FILE",
    None,
    "read when `SHILLINGS_WEBHOOK_KEY` is unset; created with mode 0600 on first run",
    lambda env, name, _default: env.get(name),
    shown="`$SHILLINGS_VAR/webhook.key`",
)


def _dsn(env: Mapping[str, str], name: str, _default: Any) -> str:
    dsn = (
        env.get(name)
        or f"mysql://root@localhost/shillings?unix_socket={run_path(env, MYSQL_SOCKET)}"
    )
    parse_dsn(dsn)
    return dsn


def _workers(env: Mapping[str, str], name: str, _default: Any) -> int:
    return env_int(env, name, max(2, os.cpu_count() or 2), 1, 256)


def _seconds_int(env: Mapping[str, str], name: str, default: Any) -> float:
    return float(env_int(env, name, int(default), 1))


def _webhook_key(env: Mapping[str, str], _name: str, _default: Any) -> bytes:
    try:
        return configured_key(env)
    except WebhookKeyError as e:
        raise ConfigError(str(e)) from None


def _webhook_allow(env: Mapping[str, str], name: str, default: Any) -> Allow:
    try:
        return parse_allow(env[name]) if env.get(name) else default
    except AllowError as e:
        raise ConfigError(str(e)) from None


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
    """Everything the app server needs to run, each field read from its variable."""

    listen: str = setting(
        "SHILLINGS_APP_LISTEN",
        DEFAULT_LISTEN,
        "Twisted endpoint (`unix:/path/app.sock` works)",
        required=True,
    )
    mysql_dsn: str = setting(
        "SHILLINGS_MYSQL_DSN",
        None,
        "`mysql://user[:password]@host[:port]/database[?unix_socket=/path]`",
        _dsn,
        shown="`mysql://root@localhost/shillings?unix_socket=$SHILLINGS_VAR/run/mysqld.sock`",
        required=True,
    )
    jwt_secret: str = setting(
        "SHILLINGS_JWT_SECRET",
        None,
        "HS256 secret, at least 32 characters; if unset, read from / generated into the"
        " secret file",
        jwt_secret,
        required=True,
    )
    token_ttl: int = setting("SHILLINGS_TOKEN_TTL", 3600, "token lifetime, seconds", ints(1))
    bcrypt_cost: int = setting(
        "SHILLINGS_BCRYPT_COST", 12, "bcrypt work factor (tests use 4)", ints(4, 31)
    )
    password_workers: int = setting(
        "SHILLINGS_PASSWORD_WORKERS",
        2,
        "bcrypt jobs run at once",
        _workers,
        shown="CPU count (at least 2)",
    )
    password_queue: int = setting(
        "SHILLINGS_PASSWORD_QUEUE",
        8,
        "bcrypt jobs that may wait for a worker; past that, signup and login get 503 with"
        " `Retry-After: 1`",
        ints(0, 10_000),
    )
    app_secret: str | None = setting(
        "SHILLINGS_APP_SECRET",
        None,
        "if set, each client must send it in a handshake frame first; required (the server"
        " refuses to start without it) when `SHILLINGS_APP_LISTEN` is not a unix socket or a"
        " loopback address",
    )
    db_pool_min: int = setting("SHILLINGS_DB_POOL_MIN", 3, "adbapi connection pool", ints(1))
    db_pool_max: int = setting(
        "SHILLINGS_DB_POOL_MAX", 10, "adbapi connection pool (at least the minimum)", ints(1)
    )
    batch_in_flight: int = setting(
        "SHILLINGS_BATCH_IN_FLIGHT",
        4,
        "group commit: transactions of one operation (pay, top-up) running at once; a request"
        " arriving while that many run, or while requests wait (sustained load), joins the"
        ' next batch (docs/ARCHITECTURE.md, "Group commit")',
        ints(1, 256),
    )
    batch_max: int = setting(
        "SHILLINGS_BATCH_MAX",
        64,
        "group commit: requests applied in one transaction at most (`1`: one per transaction)",
        ints(1, 1000),
    )
    db_sync_wait: int = setting(
        "SHILLINGS_DB_SYNC_WAIT",
        0,
        "Galera's `wsrep_sync_wait` for every session; `1` (causal reads) on a Galera cluster"
        ' (docs/ARCHITECTURE.md, "Galera"); set, it also turns multi-statement round trips off'
        ' ("Round trips")',
        ints(0, 15),
    )
    tls: TlsFiles | None = setting(
        "SHILLINGS_APP_TLS_CERT",
        None,
        "with `SHILLINGS_APP_TLS_KEY` and `SHILLINGS_APP_TLS_CA` (all three, or none): mutual"
        " TLS on `SHILLINGS_APP_LISTEN`, this server's certificate and key and the CA whose"
        " client certificates are served; replaces `SHILLINGS_APP_SECRET` there",
        lambda env, _name, _default: TlsFiles.from_env(env),
    )
    idle_timeout: float = setting(
        "SHILLINGS_APP_IDLE_TIMEOUT",
        60.0,
        "seconds before a silent client connection (e.g. a truncated frame) is closed",
        _seconds_int,
    )
    hold_min_expires_in: int = setting(
        "SHILLINGS_HOLD_MIN_EXPIRES_IN",
        60,
        "shortest `expires_in` of a hold, seconds (the SPEC's bound; tests set 1 so that"
        " holds expire during a test)",
        ints(1, 2_592_000),
    )
    hold_sweep_interval: float = setting(
        "SHILLINGS_HOLD_SWEEP_INTERVAL",
        5.0,
        "seconds between sweeps marking expired holds `expired` (and emitting `hold.expired`)",
        _seconds_int,
    )
    log_level: str = setting(
        "SHILLINGS_LOG_LEVEL",
        "info",
        "`debug`, `info`, `warn`, `error`, `critical`",
        choice(LOG_LEVELS),
    )
    metrics_listen: str | None = setting(
        "SHILLINGS_METRICS_LISTEN",
        None,
        "Twisted endpoint serving Prometheus metrics (`GET /metrics`); never the API's address",
        shown="— (no metrics; the stack sets `tcp:92NN:interface=127.0.0.1`)",
    )

    webhook_key: bytes | None = setting(
        KEY_VARIABLE,
        None,
        "base64 of the 32-byte key that seals webhook secrets in the database (README,"
        ' "Events and webhooks"); if unset, read from / generated into the key file; the app'
        " servers and the delivery workers must share it",
        _webhook_key,
    )
    webhook_allow: Allow = setting(
        "SHILLINGS_WEBHOOK_ALLOW",
        parse_allow("public"),
        "networks webhook URLs may target: `public` (every globally routable address) and/or"
        " CIDRs, comma-separated; checked on the resolved addresses at registration and at"
        ' each send (README, "Events and webhooks")',
        _webhook_allow,
    )
    webhook_resolver_threads: int = setting(
        "SHILLINGS_WEBHOOK_RESOLVER_THREADS",
        resolver.THREADS,
        "webhook host name resolutions run at once, each in a thread of the resolver's own"
        " (a slow DNS server holds one per resolution); a delivery worker runs at most its"
        " `SHILLINGS_HOOKS_CONCURRENCY`",
        ints(1, 256),
    )
    webhook_resolver_queue: int = setting(
        "SHILLINGS_WEBHOOK_RESOLVER_QUEUE",
        resolver.QUEUE,
        "webhook host name resolutions that may wait for a thread; past that a webhook"
        " registration gets 503 with `Retry-After: 1` (a delivery worker's queue is its"
        " `SHILLINGS_HOOKS_CONCURRENCY`: its sends never wait)",
        ints(0, 10_000),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AppConfig:
        """Build the configuration from ``environ`` (default: ``os.environ``)."""
        config = cls(**read_settings(cls, os.environ if environ is None else environ))
        if config.db_pool_max < config.db_pool_min:
            raise ConfigError("SHILLINGS_DB_POOL_MAX must be >= SHILLINGS_DB_POOL_MIN")
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

    @classmethod
    def table(cls) -> str:
        """The README's table of the app server's variables."""
        return settings_table(cls, (*SHARED, WEBHOOK_KEY_FILE))


def mysql_dsn(environ: Mapping[str, str] | None = None) -> str:
    """``SHILLINGS_MYSQL_DSN``, else the embedded MariaDB's socket under ``SHILLINGS_VAR``;
    checked (``ConfigError``). All ``reconcile`` reads, so it never creates a JWT secret."""
    return _dsn(os.environ if environ is None else environ, "SHILLINGS_MYSQL_DSN", None)


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
