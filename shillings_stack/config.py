"""The stack's settings (``StackConfig``, read from environment variables in one place), its
paths, and ``StackError``."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ROOT_CONF = ROOT / "supervisord.conf"
NGINX_TEMPLATE = ROOT / "nginx" / "nginx.conf.template"

SUN_PATH_MAX = 107
"""Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL)."""

_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+@-]+$")
_SAFE_UPSTREAM = re.compile(r"^[A-Za-z0-9._:=,\[\]/-]+$")
_SAFE_ARG = re.compile(r"^[A-Za-z0-9._/=+:,@-]+$")


_METRICS_OFFSET = {"app": 0, "web": 100, "hooks": 200}
"""Each program group's metrics ports, from ``SHILLINGS_METRICS_PORT_BASE``."""


class StackError(Exception):
    """A problem the operator has to fix; printed without a traceback."""


def _env(name: str, default: str, meaning: str) -> dict[str, str]:
    """A ``StackConfig`` field's documentation: the environment variable it is read from,
    its default as an operator reads it (Markdown), and its meaning. What `from_env` reads is
    its code; this is what a README table of the stack's variables is made from."""
    return {"env": name, "default": default, "meaning": meaning}


@dataclass(frozen=True)
class StackConfig:
    """The stack's shape, read from environment variables in one place (`from_env`); each
    field's ``metadata`` names its variable, default and meaning (see ``_env``)."""

    var: Path = field(
        metadata=_env(
            "SHILLINGS_VAR",
            "`./var`",
            "runtime dir: data, sockets, logs, pid files, secret (keep the path short: unix"
            " sockets live in it)",
        )
    )
    web_procs: int = field(
        default=2,
        metadata=_env("WEB_PROCS", "`2`", "number of web processes (`web:web_00`, …)"),
    )
    app_procs: int = field(
        default=1,
        metadata=_env(
            "APP_PROCS",
            "`1` (`0` when `SHILLINGS_APP_SERVERS` is set)",
            "number of app servers (`app:app_00`, …)",
        ),
    )
    hooks_procs: int = field(
        default=2,
        metadata=_env(
            "HOOKS_PROCS",
            "`2`",
            "number of webhook delivery workers (`hooks:hooks_00`, …; `0`: none)",
        ),
    )
    http_host: str = field(
        default="127.0.0.1",
        metadata=_env("SHILLINGS_HTTP_HOST", "`127.0.0.1`", "where Nginx listens: address"),
    )
    http_port: int = field(
        default=8080, metadata=_env("SHILLINGS_HTTP_PORT", "`8080`", "where Nginx listens: port")
    )
    nginx_workers: int = field(
        default=1, metadata=_env("SHILLINGS_NGINX_WORKERS", "`1`", "Nginx worker processes")
    )
    access_log: str = field(
        default="",
        metadata=_env("SHILLINGS_NGINX_ACCESS_LOG", "`var/log/nginx-access.log`", "path, or `off`"),
    )
    mysql_dsn: str | None = field(
        default=None,
        metadata=_env(
            "SHILLINGS_MYSQL_DSN",
            "embedded MariaDB on `var/run/mysqld.sock`",
            "use an external MySQL/MariaDB instead (the `mariadb` program is then not started)",
        ),
    )
    redis_url: str | None = field(
        default=None,
        metadata=_env(
            "SHILLINGS_REDIS_URL",
            "embedded Redis on `var/run/redis.sock`",
            "use an external Redis instead",
        ),
    )
    app_servers: str | None = field(
        default=None,
        metadata=_env(
            "SHILLINGS_APP_SERVERS",
            "the embedded app sockets",
            "comma-separated app servers for the web processes",
        ),
    )
    web_servers: tuple[str, ...] = field(
        default=(),
        metadata=_env(
            "SHILLINGS_WEB_SERVERS",
            "the embedded web sockets",
            "comma-separated Nginx upstreams (compose: `web:8081`)",
        ),
    )
    mariadb_args: tuple[str, ...] = field(
        default=(),
        metadata=_env("SHILLINGS_MARIADB_ARGS", "—", "extra `mariadbd` arguments"),
    )
    start_timeout: float = field(
        default=90.0,
        metadata=_env(
            "SHILLINGS_START_TIMEOUT", "`90`", "seconds `make start` waits for `/healthz`"
        ),
    )
    log_stdout: bool = field(
        default=False,
        metadata=_env(
            "SHILLINGS_LOG_STDOUT",
            "`0` (`1` in the image)",
            "`1`: every program logs to supervisord's stdout (`docker logs`), each line"
            " prefixed with its name, instead of to `var/log/`",
        ),
    )
    metrics_port_base: int = field(
        default=9200,
        metadata=_env(
            "SHILLINGS_METRICS_PORT_BASE",
            "`9200`",
            "metrics ports: app NN on base + NN, web NN on base + 100 + NN, hooks NN on"
            " base + 200 + NN (a multiple of 100; `0`: no metrics listeners)",
        ),
    )
    metrics_host: str = field(
        default="127.0.0.1",
        metadata=_env(
            "SHILLINGS_METRICS_HOST",
            "`127.0.0.1`",
            "IPv4 address the metrics ports listen on (`0.0.0.0` exposes them beyond loopback)",
        ),
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StackConfig:
        env = os.environ if env is None else env
        raw_var = env.get("SHILLINGS_VAR") or str(ROOT / "var")
        var = Path(os.path.abspath(raw_var))
        if not _SAFE_PATH.match(str(var)) or not _SAFE_PATH.match(str(ROOT)):
            raise StackError(
                f"paths must be made of letters, digits and ._/+@- only: {ROOT} / {var}"
            )
        app_servers = env.get("SHILLINGS_APP_SERVERS") or None
        if app_servers and not _SAFE_UPSTREAM.match(app_servers):
            raise StackError(f"SHILLINGS_APP_SERVERS: unexpected characters in {app_servers!r}")
        app_default = 0 if app_servers else 1
        app_procs = env_int(env, "APP_PROCS", app_default, 0, 32)
        if app_procs == 0 and not app_servers:
            raise StackError("APP_PROCS=0 needs SHILLINGS_APP_SERVERS (the app servers to use)")
        web_servers = tuple(
            s.strip() for s in (env.get("SHILLINGS_WEB_SERVERS") or "").split(",") if s.strip()
        )
        for server in web_servers:
            if not _SAFE_UPSTREAM.match(server):
                raise StackError(f"SHILLINGS_WEB_SERVERS: bad address {server!r}")
        mariadb_args = tuple((env.get("SHILLINGS_MARIADB_ARGS") or "").split())
        for arg in mariadb_args:
            if not _SAFE_ARG.match(arg):
                raise StackError(f"SHILLINGS_MARIADB_ARGS: unsafe argument {arg!r}")
        access_log = env.get("SHILLINGS_NGINX_ACCESS_LOG") or str(var / "log" / "nginx-access.log")
        if access_log != "off" and not _SAFE_PATH.match(access_log):
            raise StackError("SHILLINGS_NGINX_ACCESS_LOG must be 'off' or a plain path")
        host = env.get("SHILLINGS_HTTP_HOST") or "127.0.0.1"
        if not re.match(r"^[A-Za-z0-9.:-]+$", host):
            raise StackError(f"SHILLINGS_HTTP_HOST: bad address {host!r}")
        metrics_base = env_int(env, "SHILLINGS_METRICS_PORT_BASE", 9200, 0, 65300)
        if metrics_base % 100 or 0 < metrics_base < 1000:
            raise StackError("SHILLINGS_METRICS_PORT_BASE must be 0 or a multiple of 100 >= 1000")
        metrics_host = env.get("SHILLINGS_METRICS_HOST") or "127.0.0.1"
        if not re.match(r"^[0-9.]+$", metrics_host):
            raise StackError(f"SHILLINGS_METRICS_HOST: not an IPv4 address: {metrics_host!r}")
        return cls(
            var=var,
            web_procs=env_int(env, "WEB_PROCS", 2, 1, 64),
            app_procs=app_procs,
            hooks_procs=env_int(env, "HOOKS_PROCS", 2, 0, 32),
            http_host=host,
            http_port=env_int(env, "SHILLINGS_HTTP_PORT", 8080, 1, 65535),
            nginx_workers=env_int(env, "SHILLINGS_NGINX_WORKERS", 1, 1, 64),
            access_log=access_log,
            mysql_dsn=env.get("SHILLINGS_MYSQL_DSN") or None,
            redis_url=env.get("SHILLINGS_REDIS_URL") or None,
            app_servers=app_servers,
            web_servers=web_servers,
            mariadb_args=mariadb_args,
            start_timeout=float(env_int(env, "SHILLINGS_START_TIMEOUT", 90, 5, 3600)),
            log_stdout=env_int(env, "SHILLINGS_LOG_STDOUT", 0, 0, 1) == 1,
            metrics_port_base=metrics_base,
            metrics_host=metrics_host,
        )

    # -- paths ------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        return self.var / "run"

    @property
    def etc_dir(self) -> Path:
        return self.var / "etc"

    @property
    def log_dir(self) -> Path:
        return self.var / "log"

    @property
    def conf(self) -> Path:
        """The supervisord config in use: the repository's own for the default var/."""
        if self.var == ROOT / "var":
            return ROOT_CONF
        return self.etc_dir / "supervisord.conf"

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "supervisord.pid"

    def app_socket(self, n: int) -> Path:
        return self.run_dir / f"app_{n:02d}.sock"

    def web_socket(self, n: int) -> Path:
        return self.run_dir / f"web_{n:02d}.sock"

    @property
    def app_server_list(self) -> str:
        """What the web processes connect to (SHILLINGS_APP_SERVERS)."""
        if self.app_servers:
            return self.app_servers
        return ",".join(f"unix:{self.app_socket(n)}" for n in range(self.app_procs))

    @property
    def upstreams(self) -> list[str]:
        """nginx upstream server addresses, one per web process."""
        if self.web_servers:
            return list(self.web_servers)
        return [f"unix:{self.web_socket(n)}" for n in range(self.web_procs)]

    def metrics_env(self, kind: str) -> dict[str, str]:
        """SHILLINGS_METRICS_LISTEN of the group ``kind``: app NN listens on base + NN, web
        NN on base + 100 + NN, hooks NN on base + 200 + NN (supervisord expands the process
        number; empty: no metrics)."""
        if not self.metrics_port_base:
            return {}
        prefix = self.metrics_port_base // 100 + _METRICS_OFFSET[kind] // 100
        listen = f"tcp:{prefix}%(process_num)02d:interface={self.metrics_host}"
        return {"SHILLINGS_METRICS_LISTEN": listen}

    def metrics_targets(self, kind: str) -> list[str]:
        """``host:port`` of every process of the group ``kind`` (for Prometheus)."""
        if not self.metrics_port_base:
            return []
        host = "127.0.0.1" if self.metrics_host == "0.0.0.0" else self.metrics_host
        count = {"app": self.app_procs, "web": self.web_procs, "hooks": self.hooks_procs}[kind]
        first = self.metrics_port_base + _METRICS_OFFSET[kind]
        return [f"{host}:{first + n}" for n in range(count)]

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.http_host, self.http_host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.http_port}"

    def check_socket_paths(self) -> None:
        paths = [self.supervisor_socket, self.app_socket(99), self.web_socket(99)]
        paths += [self.run_dir / "mysqld.sock", self.run_dir / "redis.sock"]
        longest = max(paths, key=lambda p: len(str(p)))
        if len(str(longest)) > SUN_PATH_MAX:
            raise StackError(
                f"unix socket path too long ({len(str(longest))} > {SUN_PATH_MAX} bytes): "
                f"{longest}; set SHILLINGS_VAR to a shorter directory"
            )


def env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """Integer variable ``name`` of ``env`` within [low, high] (``default`` when unset)."""
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise StackError(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise StackError(f"{name} must be between {low} and {high}, got {value}")
    return value


def find_binary(name: str) -> str:
    """Absolute path of a system binary (PATH, then /usr/sbin and /usr/bin)."""
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    raise StackError(f"{name} not found: run `make setup` (installs it from apt)")
