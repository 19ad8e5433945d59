#!/usr/bin/env python3
"""Run the whole Shillings stack under one supervisord.

    stack.py render    write var/etc/programs.conf and var/etc/nginx.conf from the environment
    stack.py run       render, then supervisord in the foreground (Ctrl-C stops everything)
    stack.py start     render, start supervisord in the background, wait until /healthz is 200
    stack.py stop      shut supervisord and every program down; leave no process behind
    stack.py status    supervisorctl status, plus the /healthz answer
    stack.py restart   rolling restart: app servers one at a time, web processes via nginx
    stack.py scale     apply WEB_PROCS / APP_PROCS to the running stack while it serves
    stack.py ctl ARGS  supervisorctl -c <the config in use> ARGS
    stack.py nginx     render nginx.conf only and exec nginx in the foreground (docker-compose)

Every setting comes from the environment (see ``StackConfig``); the Makefile passes
``WEB_PROCS``, ``APP_PROCS``, ``SHILLINGS_HTTP_PORT``, ``SHILLINGS_VAR`` and friends through.
Stdlib only, plus ``supervisor`` and ``shillings_proto`` from the project's venv.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
ROOT_CONF = ROOT / "supervisord.conf"
NGINX_TEMPLATE = ROOT / "nginx" / "nginx.conf.template"

SUN_PATH_MAX = 107
"""Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL)."""

_SAFE_PATH = re.compile(r"^[A-Za-z0-9._/+@-]+$")
_SAFE_UPSTREAM = re.compile(r"^[A-Za-z0-9._:=,\[\]/-]+$")
_SAFE_ARG = re.compile(r"^[A-Za-z0-9._/=+:,@-]+$")


class StackError(Exception):
    """A problem the operator has to fix; printed without a traceback."""


@dataclass(frozen=True)
class StackConfig:
    """The stack's shape, read from environment variables in one place."""

    var: Path
    web_procs: int = 2
    app_procs: int = 1
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    nginx_workers: int = 1
    access_log: str = ""
    mysql_dsn: str | None = None
    redis_url: str | None = None
    app_servers: str | None = None
    web_servers: tuple[str, ...] = ()
    mariadb_args: tuple[str, ...] = ()
    start_timeout: float = 90.0
    log_stdout: bool = False
    metrics_port_base: int = 9200
    metrics_host: str = "127.0.0.1"

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
        app_procs = _int(env, "APP_PROCS", app_default, 0, 32)
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
        metrics_base = _int(env, "SHILLINGS_METRICS_PORT_BASE", 9200, 0, 65300)
        if metrics_base % 100 or 0 < metrics_base < 1000:
            raise StackError("SHILLINGS_METRICS_PORT_BASE must be 0 or a multiple of 100 >= 1000")
        metrics_host = env.get("SHILLINGS_METRICS_HOST") or "127.0.0.1"
        if not re.match(r"^[0-9.]+$", metrics_host):
            raise StackError(f"SHILLINGS_METRICS_HOST: not an IPv4 address: {metrics_host!r}")
        return cls(
            var=var,
            web_procs=_int(env, "WEB_PROCS", 2, 1, 64),
            app_procs=app_procs,
            http_host=host,
            http_port=_int(env, "SHILLINGS_HTTP_PORT", 8080, 1, 65535),
            nginx_workers=_int(env, "SHILLINGS_NGINX_WORKERS", 1, 1, 64),
            access_log=access_log,
            mysql_dsn=env.get("SHILLINGS_MYSQL_DSN") or None,
            redis_url=env.get("SHILLINGS_REDIS_URL") or None,
            app_servers=app_servers,
            web_servers=web_servers,
            mariadb_args=mariadb_args,
            start_timeout=float(_int(env, "SHILLINGS_START_TIMEOUT", 90, 5, 3600)),
            log_stdout=_int(env, "SHILLINGS_LOG_STDOUT", 0, 0, 1) == 1,
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
        NN on base + 100 + NN (supervisord expands the process number; empty: no metrics)."""
        if not self.metrics_port_base:
            return {}
        prefix = self.metrics_port_base // 100 + (kind == "web")
        listen = f"tcp:{prefix}%(process_num)02d:interface={self.metrics_host}"
        return {"SHILLINGS_METRICS_LISTEN": listen}

    def metrics_targets(self, kind: str) -> list[str]:
        """``host:port`` of every process of the group ``kind`` (for Prometheus)."""
        if not self.metrics_port_base:
            return []
        host = "127.0.0.1" if self.metrics_host == "0.0.0.0" else self.metrics_host
        count, first = (self.web_procs, 100) if kind == "web" else (self.app_procs, 0)
        return [f"{host}:{self.metrics_port_base + first + n}" for n in range(count)]

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


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
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


# -- rendering --------------------------------------------------------------------------


def _env_line(values: Mapping[str, str]) -> str:
    """A supervisord ``environment`` value (every value was checked to be plain text)."""
    return ",".join(f'{key}="{value}"' for key, value in values.items())


_COMMON = """\
autostart = true
autorestart = true
redirect_stderr = true
stopasgroup = true
killasgroup = true
stdout_logfile_maxbytes = 20MB
stdout_logfile_backups = 3"""


def _process_group(
    name: str, command: str, numprocs: int, env: Mapping[str, str], priority: int, log: Path
) -> str:
    """A [program:…] section of ``numprocs`` processes named ``<name>_00``, ``<name>_01``, …"""
    return f"""
[program:{name}]
command = {command}
process_name = %(program_name)s_%(process_num)02d
numprocs = {numprocs}
directory = {ROOT}
environment = {_env_line(env)}
priority = {priority}
startsecs = 1
startretries = 5
stopsignal = TERM
stopwaitsecs = 15
stdout_logfile = {log}/%(program_name)s_%(process_num)02d.log
{_COMMON}"""


def render_programs(cfg: StackConfig) -> str:
    """The [program:…] sections supervisord.conf includes."""
    var, log = cfg.var, cfg.log_dir
    parts = [
        "; Rendered by scripts/stack.py from the environment when the stack starts.",
        "; Do not edit: change the environment (see README) and restart the stack.",
    ]
    if not cfg.mysql_dsn:
        mariadb = " ".join([str(ROOT / "scripts" / "mariadb.sh"), str(var), *cfg.mariadb_args])
        parts.append(
            f"""
[program:mariadb]
command = {mariadb}
directory = {ROOT}
priority = 10
startsecs = 2
startretries = 3
stopsignal = TERM
stopwaitsecs = 60
stdout_logfile = {log / "mariadb.log"}
{_COMMON}"""
        )
    if not cfg.redis_url:
        # A cache only (token profiles, generations, login counters): no RDB, no AOF. After a
        # restart it starts empty and every request falls through to the app server once.
        redis = (
            f"{find_binary('redis-server')} --port 0 --unixsocket {cfg.run_dir / 'redis.sock'}"
            f' --unixsocketperm 700 --save "" --appendonly no --dir {var / "redis"}'
            ' --daemonize no --logfile "" --maxmemory 256mb --maxmemory-policy noeviction'
        )
        parts.append(
            f"""
[program:redis]
command = {redis}
directory = {var / "redis"}
priority = 10
startsecs = 1
stopsignal = TERM
stopwaitsecs = 10
stdout_logfile = {log / "redis.log"}
{_COMMON}"""
        )
    if cfg.app_procs > 0:
        app_env = {
            "SHILLINGS_VAR": str(var),
            "SHILLINGS_APP_LISTEN": f"unix:{cfg.run_dir}/app_%(process_num)02d.sock:mode=600",
            **cfg.metrics_env("app"),
        }
        parts.append(
            _process_group(
                "app", f"{VENV_BIN / 'shillings-app'} serve", cfg.app_procs, app_env, 20, log
            )
        )
    web_env = {
        "SHILLINGS_VAR": str(var),
        "SHILLINGS_WEB_LISTEN": f"unix:{cfg.run_dir}/web_%(process_num)02d.sock:mode=600",
        "SHILLINGS_APP_SERVERS": cfg.app_server_list,
        "SHILLINGS_TRUST_PROXY": "1",
        **cfg.metrics_env("web"),
    }
    parts.append(
        _process_group("web", str(VENV_BIN / "shillings-web"), cfg.web_procs, web_env, 30, log)
    )
    nginx = f"{find_binary('nginx')} -p {var / 'nginx'} -c {cfg.etc_dir / 'nginx.conf'} -e stderr"
    parts.append(
        f"""
[program:nginx]
command = {nginx}
directory = {var / "nginx"}
priority = 40
startsecs = 1
startretries = 3
stopsignal = QUIT
stopwaitsecs = 15
stdout_logfile = {log / "nginx.log"}
{_COMMON}
"""
    )
    programs = "\n".join(parts)
    return _log_to_stdout(programs) if cfg.log_stdout else programs


def _log_to_stdout(programs: str) -> str:
    """In a container: every program logs to supervisord's stdout (`docker logs`), each line
    prefixed with its process name by scripts/logprefix.py, instead of to files in var/log."""
    wrapper = f"{VENV_BIN / 'python'} {ROOT / 'scripts' / 'logprefix.py'} "
    for pattern, replacement in (
        (r"^command = ", f"command = {wrapper}"),
        (r"^stdout_logfile = .*$", "stdout_logfile = /dev/stdout"),
        (r"^stdout_logfile_maxbytes = .*$", "stdout_logfile_maxbytes = 0"),
        (r"^stdout_logfile_backups = .*$", "stdout_logfile_backups = 0"),
    ):
        programs = re.sub(pattern, replacement, programs, flags=re.MULTILINE)
    return programs


def render_nginx(cfg: StackConfig, upstreams: Iterable[str] | None = None) -> str:
    """nginx.conf from nginx/nginx.conf.template (upstreams: ``cfg.upstreams`` by default)."""
    listen_host = f"[{cfg.http_host}]" if ":" in cfg.http_host else cfg.http_host
    # The user directive only means something when the master runs as root; the stack runs
    # every program as the user who starts it, so workers can reach the 0600 web sockets.
    user = "user root root;" if os.geteuid() == 0 else "# (not root: workers run as this user)"
    values = {
        "user_directive": user,
        "worker_processes": str(cfg.nginx_workers),
        "var": str(cfg.var),
        "listen": f"{listen_host}:{cfg.http_port}",
        "access_log": "off"
        if cfg.access_log == "off"
        else f"{cfg.access_log} shillings buffer=64k flush=1s",
        "upstream_servers": "\n".join(
            f"        server {address} max_fails=0;"
            for address in (cfg.upstreams if upstreams is None else upstreams)
        ),
    }
    text = NGINX_TEMPLATE.read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    left = re.findall(r"\{\{[a-z_]+\}\}", text)
    if left:
        raise StackError(f"nginx template placeholders left unrendered: {left}")
    return text


def render_prometheus(cfg: StackConfig) -> str:
    """A Prometheus scrape configuration of the stack's processes, their targets read from
    prometheus-targets.json (``file_sd``: Prometheus follows `make scale` without a reload)."""
    targets = cfg.etc_dir / "prometheus-targets.json"
    return (
        "# Rendered by scripts/stack.py: scrape every app and web process of this stack.\n"
        "# Use as prometheus.yml, or copy the job into yours (docs/ARCHITECTURE.md, Metrics).\n"
        "scrape_configs:\n"
        "  - job_name: shillings\n"
        "    file_sd_configs:\n"
        f"      - files: [{json.dumps(str(targets))}]\n"
    )


def render_prometheus_targets(cfg: StackConfig) -> str:
    """Every app and web process's metrics address, labelled with its group and name."""
    groups = []
    for kind in ("app", "web"):
        for n, target in enumerate(cfg.metrics_targets(kind)):
            labels = {"group": kind, "process": f"{kind}_{n:02d}"}
            groups.append({"targets": [target], "labels": labels})
    return json.dumps(groups, indent=2) + "\n"


def render_supervisord_conf(cfg: StackConfig) -> str:
    """The repository's supervisord.conf with var/ moved to ``cfg.var``."""
    text = ROOT_CONF.read_text(encoding="utf-8")
    replacements = [
        ("%(here)s/var", str(cfg.var)),
        ("files = var/etc/programs.conf", "files = programs.conf"),
    ]
    for old, new in replacements:
        if old not in text:
            raise StackError(f"supervisord.conf no longer contains {old!r}; update stack.py")
        text = text.replace(old, new)
    header = (
        f"; Rendered by scripts/stack.py from {ROOT_CONF} for SHILLINGS_VAR={cfg.var}.\n"
        f"; Operate with: {VENV_BIN / 'supervisorctl'} -c {cfg.etc_dir / 'supervisord.conf'}\n"
    )
    return header + text


def _write(path: Path, text: str) -> None:
    """Replace ``path`` atomically, so a running reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def make_dirs(cfg: StackConfig) -> None:
    for path in (cfg.var, cfg.run_dir, cfg.etc_dir, cfg.log_dir, cfg.var / "redis"):
        path.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (cfg.var / "nginx" / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.run_dir, 0o700)


def render(cfg: StackConfig) -> Path:
    """Write every rendered file under var/etc/; return the supervisord config to use."""
    cfg.check_socket_paths()
    make_dirs(cfg)
    _write(cfg.etc_dir / "nginx.conf", render_nginx(cfg))
    _write(cfg.etc_dir / "programs.conf", render_programs(cfg))
    _write(cfg.etc_dir / "prometheus.yml", render_prometheus(cfg))
    _write(cfg.etc_dir / "prometheus-targets.json", render_prometheus_targets(cfg))
    if cfg.conf != ROOT_CONF:
        _write(cfg.conf, render_supervisord_conf(cfg))
    return cfg.conf


def ensure_jwt_secret(cfg: StackConfig) -> None:
    """Create the JWT secret file before app and web processes race to create it."""
    if os.environ.get("SHILLINGS_JWT_SECRET"):
        return
    from shillings_proto.secrets import load_or_create_secret

    load_or_create_secret(
        os.environ.get("SHILLINGS_JWT_SECRET_FILE") or str(cfg.var / "jwt_secret")
    )


# -- supervisord ------------------------------------------------------------------------


def _proc_cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _supervisord_conf_of(pid: int) -> Path | None:
    """The config file a live supervisord runs with (its ``-c``, relative to its cwd)."""
    args = [a.decode(errors="replace") for a in _proc_cmdline(pid).split(b"\0")]
    program = next((i for i, a in enumerate(args) if Path(a).name == "supervisord"), None)
    if program is None:
        return None
    conf = "supervisord.conf"  # without -c: found in its working directory (first choice)
    for flag, value in itertools.pairwise(args[program:]):
        if flag in ("-c", "--configuration"):
            conf = value
            break
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd"), conf).resolve()
    except OSError:
        return None


def supervisord_pid(cfg: StackConfig) -> int | None:
    """The pid of this stack's supervisord, if it runs. A pid file left by an unclean stop
    may name a pid the system has since given to another process: the process must be a
    supervisord running with this stack's config to count."""
    try:
        pid = int(cfg.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if _alive(pid) and _supervisord_conf_of(pid) == cfg.conf.resolve():
        return pid
    return None


def rpc(cfg: StackConfig, namespace: str = "supervisor") -> Any:
    """An XML-RPC proxy to this stack's supervisord over its unix socket."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{cfg.supervisor_socket}")
    return getattr(xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport), namespace)


def process_infos(cfg: StackConfig) -> list[dict[str, Any]]:
    try:
        infos: list[dict[str, Any]] = rpc(cfg).getAllProcessInfo()
    except (OSError, xmlrpc.client.Error):
        return []
    return infos


def healthz(cfg: StackConfig, timeout: float = 2.0) -> tuple[int, str]:
    """Status code and body of GET /healthz through nginx (0 when unreachable)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"{cfg.url}/healthz", timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as e:
        return 0, str(e)


def web_healthz(path: Path, timeout: float = 2.0) -> int:
    """Status code of GET /healthz straight from one web process's unix socket (0: none)."""
    conn = http.client.HTTPConnection("localhost", timeout=timeout)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(str(path))
        conn.sock = sock
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        conn.close()


def all_healthy(cfg: StackConfig) -> bool:
    """/healthz is 200 through nginx and, for the embedded web processes, from each one
    (nginx retries a GET on another process, so one healthy answer proves little)."""
    if healthz(cfg, timeout=2.0)[0] != 200:
        return False
    if cfg.web_servers:
        return True
    return all(web_healthz(cfg.web_socket(n)) == 200 for n in range(cfg.web_procs))


def check_port_free(cfg: StackConfig) -> None:
    family = socket.AF_INET6 if ":" in cfg.http_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((cfg.http_host, cfg.http_port))
        except OSError as e:
            raise StackError(
                f"cannot listen on {cfg.http_host}:{cfg.http_port} ({e.strerror}); "
                "set SHILLINGS_HTTP_PORT to a free port"
            ) from None


def _supervisord_env(cfg: StackConfig) -> dict[str, str]:
    env = dict(os.environ)
    env["SHILLINGS_VAR"] = str(cfg.var)
    return env


def prepare(cfg: StackConfig) -> Path:
    """Everything before supervisord starts: leftovers of an unclean stop (processes, then
    files), port check, rendering, JWT secret."""
    if _socket_served(cfg.supervisor_socket):
        # A supervisord of this stack that its pid file does not name (started by hand,
        # pid file lost): never take its programs for leftovers.
        raise StackError(
            f"a supervisord serves {cfg.supervisor_socket} but {cfg.pidfile} does not name it;"
            f" stop it first: {VENV_BIN / 'supervisorctl'} -c {cfg.conf} shutdown"
        )
    stop_leftovers(cfg)
    removed = recover(cfg)
    if removed:
        print(f"shillings: removed leftovers of an unclean stop: {', '.join(removed)}")
    check_port_free(cfg)
    conf = render(cfg)
    ensure_jwt_secret(cfg)
    return conf


def cmd_render(cfg: StackConfig) -> int:
    conf = render(cfg)
    print(f"rendered {cfg.etc_dir}/programs.conf and nginx.conf; supervisord config: {conf}")
    return 0


def cmd_run(cfg: StackConfig) -> int:
    if supervisord_pid(cfg):
        raise StackError(f"the stack already runs in the background (var: {cfg.var}); `make stop`")
    conf = prepare(cfg)
    print(f"shillings: starting in the foreground on {cfg.url} (Ctrl-C stops everything)")
    sys.stdout.flush()
    supervisord = str(VENV_BIN / "supervisord")
    os.execve(supervisord, [supervisord, "-n", "-c", str(conf)], _supervisord_env(cfg))


def cmd_start(cfg: StackConfig) -> int:
    if supervisord_pid(cfg):
        print(f"shillings: already running (var: {cfg.var})")
        cfg = running_config(cfg)
    else:
        conf = prepare(cfg)
        subprocess.run(
            [str(VENV_BIN / "supervisord"), "-c", str(conf)],
            env=_supervisord_env(cfg),
            stdin=subprocess.DEVNULL,
            check=True,
        )
    if not wait_ready(cfg):
        print_status(cfg)
        print(
            f"shillings: not ready after {cfg.start_timeout:.0f}s; logs in {cfg.log_dir} "
            "(`make stop` shuts it down)",
            file=sys.stderr,
        )
        return 1
    print_status(cfg)
    print(f"shillings: ready on {cfg.url}")
    return 0


def wait_ready(cfg: StackConfig) -> bool:
    """Wait (bounded) until every web process answers /healthz 200 (each connected to Redis
    and an app server that reaches MySQL); give up early if a program is FATAL."""
    deadline = time.monotonic() + cfg.start_timeout
    while time.monotonic() < deadline:
        if all_healthy(cfg):
            return True
        fatal = [
            i["group"] + ":" + i["name"] for i in process_infos(cfg) if i["statename"] == "FATAL"
        ]
        if fatal:
            print(f"shillings: failed to start: {', '.join(fatal)}", file=sys.stderr)
            for name in fatal:
                _print_log_tail(cfg, name.split(":")[1])
            return False
        if not supervisord_pid(cfg):
            print(
                f"shillings: supervisord exited; see {cfg.log_dir}/supervisord.log", file=sys.stderr
            )
            return False
        time.sleep(0.25)
    return False


def _print_log_tail(cfg: StackConfig, name: str, lines: int = 15) -> None:
    path = cfg.log_dir / f"{name}.log"
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return
    print(f"--- {path} (last {len(tail)} lines)", file=sys.stderr)
    for line in tail:
        print(line, file=sys.stderr)


def print_status(cfg: StackConfig) -> None:
    subprocess.run(
        [str(VENV_BIN / "supervisorctl"), "-c", str(cfg.conf), "status"],
        env=_supervisord_env(cfg),
        check=False,
    )


def cmd_status(cfg: StackConfig) -> int:
    if not supervisord_pid(cfg):
        print(f"shillings: not running (var: {cfg.var})")
        return 3
    print(f"shillings: supervisord config {cfg.conf}")
    print_status(cfg)
    code, body = healthz(cfg)
    print(f"{cfg.url}/healthz: {code or 'unreachable'} {body.strip()}")
    return 0 if code == 200 else 1


def cmd_stop(cfg: StackConfig) -> int:
    pid = supervisord_pid(cfg)
    if pid is None:
        print(f"shillings: supervisord not running (var: {cfg.var})")
    else:
        try:
            rpc(cfg).shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(pid, signal.SIGTERM)
        # Programs stop in reverse priority order; mariadb may take up to its stopwaitsecs.
        if not _wait_gone([pid], 120.0):
            print(
                f"shillings: supervisord {pid} did not exit in 120 s; killing it", file=sys.stderr
            )
            _signal_all([pid], signal.SIGKILL)
        print("shillings: stopped")
    stop_leftovers(cfg)
    still = stack_processes(cfg)
    if still:
        print(f"shillings: processes still alive: {sorted(still)}", file=sys.stderr)
        return 1
    return 0


_DAEMONS = ("mariadbd", "redis-server", "nginx")
"""Programs that rewrite their own environment block (process titles): found by cmdline."""


def _daemon_executables() -> set[str]:
    found = set()
    for name in _DAEMONS:
        try:
            found.add(os.path.realpath(find_binary(name)))
        except StackError:
            pass
    return found


def stack_processes(cfg: StackConfig) -> set[int]:
    """Live processes of this stack, and everything in their process groups: those carrying
    the SHILLINGS_STACK_DIR marker supervisord sets, and our daemons started on var/ or
    running in it."""
    marker = b"\0SHILLINGS_STACK_DIR=" + str(cfg.var).encode() + b"\0"
    var_arg = str(cfg.var).encode() + b"/"
    daemons = _daemon_executables()
    me = os.getpid()
    marked: set[int] = set()
    groups: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        groups[pid] = int(fields[2])
        if marker in b"\0" + environ:
            marked.add(pid)
        elif exe in daemons and (var_arg in _proc_cmdline(pid) or _cwd_in(pid, var_arg)):
            marked.add(pid)  # nginx workers orphaned by their master's SIGKILL: by their cwd
    own_group = os.getpgrp()
    stack_groups = {groups[pid] for pid in marked if pid in groups} - {own_group}
    return marked | {pid for pid, pgrp in groups.items() if pgrp in stack_groups}


def _cwd_in(pid: int, directory: bytes) -> bool:
    try:
        return (os.readlink(f"/proc/{pid}/cwd") + "/").encode().startswith(directory)
    except OSError:
        return False


def stop_leftovers(cfg: StackConfig) -> None:
    """Stop processes of this stack that outlived their supervisord (e.g. it was killed)."""
    left = stack_processes(cfg)
    if left:
        print(f"shillings: stopping leftover processes {sorted(left)}", file=sys.stderr)
        _signal_all(left, signal.SIGTERM)
        if not _wait_gone(left, 15.0):
            _signal_all(left, signal.SIGKILL)
            _wait_gone(left, 5.0)


# -- recovery after an unclean stop -----------------------------------------------------
# SIGKILL of supervisord and its children (OOM killer, `docker kill`, a host crash) leaves
# files in var/ that name processes which no longer exist. Pids restart low in a new
# container and after a reboot, so a stale pid may belong to another live process by then.

_PID_FILES = ("supervisord.pid", "nginx.pid", "mysqld.pid")


def _socket_served(path: Path) -> bool:
    """True if a process accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # e.g. a full backlog or a timeout: someone is there
    return True


def recover(cfg: StackConfig) -> list[str]:
    """Remove what an unclean stop left in var/ (the names removed). Call only once no
    process of this stack runs: a socket some process still serves is never touched."""
    if stack_processes(cfg):
        raise StackError(f"processes of this stack still run (var: {cfg.var}); `make stop`")
    removed: list[Path] = []
    run = cfg.run_dir
    sockets = [p for p in run.glob("*.sock") if p.is_socket()] if run.is_dir() else []
    for sock in sorted(sockets):
        if _socket_served(sock):
            raise StackError(f"{sock} is served by a process outside this stack; stop it first")
        removed.append(sock)
    # Twisted's unix: endpoints lock <socket>.lock -> <pid> (FilesystemLock). A link that
    # names a reused pid makes the endpoint refuse with "Cannot acquire lock" forever.
    removed += [p for p in run.glob("*.sock.lock") if p.is_symlink()] if run.is_dir() else []
    removed += [run / name for name in _PID_FILES if (run / name).is_file()]
    removed += _stale_secret_files(cfg)
    for path in removed:
        path.unlink(missing_ok=True)
    return [
        str(path.relative_to(cfg.var) if path.is_relative_to(cfg.var) else path) for path in removed
    ]


def _stale_secret_files(cfg: StackConfig) -> list[Path]:
    """Leftovers of a JWT secret file creation that was interrupted: its ``<file>.<pid>.tmp``
    (the creator is dead), and the file itself if it is empty (a crash before its data
    reached the disk; no token can have been signed with an empty secret)."""
    if os.environ.get("SHILLINGS_JWT_SECRET"):
        return []
    path = Path(os.environ.get("SHILLINGS_JWT_SECRET_FILE") or cfg.var / "jwt_secret")
    found = []
    for tmp in path.parent.glob(f"{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 1 : -len(".tmp")]
        if pid.isdigit() and not _alive(int(pid)):
            found.append(tmp)
    try:
        if path.is_file() and not path.read_bytes().strip():
            found.append(path)
    except OSError:
        pass
    return found


def _signal_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_gone(pids: Iterable[int], timeout: float) -> bool:
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if _alive(pid)}
        if pending:
            time.sleep(0.1)
    return not pending


# -- the running stack's shape; restarting and scaling it while it serves ----------------


def running_config(cfg: StackConfig) -> StackConfig:
    """The configuration of the running stack: the environment its supervisord was started
    with (ports, addresses, ...) and the sizes of its live program groups, which `scale`
    changes. ``cfg`` itself when supervisord does not run."""
    pid = supervisord_pid(cfg)
    if pid is None:
        return cfg
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return cfg
    env = dict(i.decode(errors="replace").split("=", 1) for i in raw.split(b"\0") if b"=" in i)
    env["SHILLINGS_VAR"] = str(cfg.var)
    groups = [i["group"] for i in process_infos(cfg)]
    if groups:
        env["WEB_PROCS"] = str(groups.count("web"))
        env["APP_PROCS"] = str(groups.count("app"))
    return StackConfig.from_env(env)


def _children(parent: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry))
    return found


def reload_nginx(cfg: StackConfig, webs: Iterable[int], timeout: float = 60.0) -> None:
    """Point nginx at the web processes ``webs`` and reload it gracefully; return once the
    workers of the previous configuration have exited, i.e. every request they held has
    been answered and none of them sends work to a web process left out any more."""
    upstreams = [f"unix:{cfg.web_socket(n)}" for n in webs]
    if not upstreams:
        raise StackError("nginx needs at least one web process")
    conf = cfg.etc_dir / "nginx.conf"
    candidate = conf.with_name("nginx.conf.new")
    candidate.write_text(render_nginx(cfg, upstreams), encoding="utf-8")
    nginx = find_binary("nginx")
    prefix = str(cfg.var / "nginx")
    check = subprocess.run(
        [nginx, "-t", "-q", "-p", prefix, "-c", str(candidate), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise StackError(f"the new nginx.conf does not pass nginx -t: {check.stderr.strip()}")
    os.replace(candidate, conf)
    master = int(rpc(cfg).getProcessInfo("nginx")["pid"])
    if master <= 0:  # (kill(0, …) would signal our own process group)
        raise StackError("nginx is not running: `stack.py ctl start nginx`, then run this again")
    old_workers = _children(master)
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in old_workers) or not _children(master) - old_workers:
        if time.monotonic() > deadline:
            raise StackError(f"nginx did not finish its reload in {timeout:.0f}s; see its log")
        time.sleep(0.05)


def _wait_until(cfg: StackConfig, names: list[str], ready: Callable[[], bool]) -> None:
    """Wait (bounded) until programs ``names`` are RUNNING and ``ready()``; fail early when
    one of them is FATAL."""
    deadline = time.monotonic() + cfg.start_timeout
    while True:
        states = {f"{i['group']}:{i['name']}": i["statename"] for i in process_infos(cfg)}
        if all(states.get(name) == "RUNNING" for name in names) and ready():
            return
        fatal = [name for name in names if states.get(name) == "FATAL"]
        if fatal or time.monotonic() > deadline:
            for name in names:
                _print_log_tail(cfg, name.split(":")[1])
            raise StackError(f"not ready in time: {', '.join(fatal or names)}")
        time.sleep(0.1)


def _web(n: int) -> str:
    return f"web:web_{n:02d}"


def _app(n: int) -> str:
    return f"app:app_{n:02d}"


def roll_webs(cfg: StackConfig, restart: list[int], serving: list[int]) -> None:
    """Restart the web processes ``restart`` (of those nginx uses, ``serving``) without
    losing a request: nginx stops sending them work (a graceful reload) before they are
    restarted and gets them back once they answer /healthz. In two halves when all of
    ``serving`` restart, so that one half always serves."""
    if not restart:
        return
    if set(serving) - set(restart):
        batches = [restart]
    elif len(restart) >= 2:
        batches = [restart[: len(restart) // 2], restart[len(restart) // 2 :]]
    else:
        raise StackError("one web process cannot be restarted while it alone serves")
    for batch in batches:
        reload_nginx(cfg, [n for n in serving if n not in batch])
        for n in batch:
            _stop(cfg, _web(n))
        for n in batch:
            rpc(cfg).startProcess(_web(n), False)
        names = [_web(n) for n in batch]
        _wait_until(cfg, names, lambda b=batch: all(_web_ok(cfg, n) for n in b))
    reload_nginx(cfg, serving)


def _web_ok(cfg: StackConfig, n: int) -> bool:
    return web_healthz(cfg.web_socket(n), timeout=2.0) == 200


def _app_ok(cfg: StackConfig, n: int) -> bool:
    return _socket_served(cfg.app_socket(n))


def _stop(cfg: StackConfig, name: str) -> None:
    """Stop program ``name`` (waiting until it has exited); already stopped is fine."""
    from supervisor.xmlrpc import Faults

    try:
        rpc(cfg).stopProcess(name, True)
    except xmlrpc.client.Fault as e:
        if e.faultCode != Faults.NOT_RUNNING:
            raise


def _stale_webs(cfg: StackConfig, webs: Iterable[int]) -> list[int]:
    """Those of the running web processes ``webs`` not using ``cfg``'s app servers."""
    wanted = f"SHILLINGS_APP_SERVERS={cfg.app_server_list}".encode()
    stale = []
    for n in webs:
        pid = int(rpc(cfg).getProcessInfo(_web(n))["pid"])
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if pid else [wanted]
        except OSError:
            environ = []
        if wanted not in environ:
            stale.append(n)
    return stale


def scale(old: StackConfig, new: StackConfig) -> None:
    """Take the running stack from ``old``'s process counts to ``new``'s while it serves;
    also completes a scale that was interrupted (running it again converges).

    Apps are added first; new web processes start with the new app server list and join
    nginx once healthy; the other web processes still on another list are restarted onto
    it through `roll_webs`; web processes to remove leave nginx (graceful reload) before
    they stop; app servers to remove stop last, once no web process uses them.
    supervisorctl update would stop a changed group whole: shillings.updateGroup changes
    it in place.
    """
    w0, w1, a0, a1 = old.web_procs, new.web_procs, old.app_procs, new.app_procs
    if max(w0, w1) < 2 and _stale_webs(new, range(min(w0, w1))):
        # The only web process cannot restart onto the new app servers while it alone
        # serves: a second one serves meanwhile.
        surge = replace(new, web_procs=2)
        scale(old, surge)
        scale(surge, new)
        return
    extension = rpc(new, "shillings")
    # Meanwhile: every process of both shapes, web processes configured with the new list.
    mid = replace(
        new, web_procs=max(w0, w1), app_procs=max(a0, a1), app_servers=new.app_server_list
    )
    _write(new.etc_dir / "programs.conf", render_programs(mid))
    _write(new.etc_dir / "prometheus-targets.json", render_prometheus_targets(mid))
    extension.updateGroup("app")
    added_apps = list(range(a0, a1))
    _wait_until(
        new, [_app(n) for n in added_apps], lambda: all(_app_ok(new, n) for n in added_apps)
    )
    extension.updateGroup("web")
    added_webs = list(range(w0, w1))
    _wait_until(
        new, [_web(n) for n in added_webs], lambda: all(_web_ok(new, n) for n in added_webs)
    )
    serving = list(range(max(w0, w1)))
    if w1 > w0:
        reload_nginx(new, serving)
    roll_webs(new, _stale_webs(new, range(min(w0, w1))), serving)
    if (new.etc_dir / "nginx.conf").read_text(encoding="utf-8") != render_nginx(new):
        reload_nginx(new, range(w1))
    for n in range(w1, w0):
        _stop(new, _web(n))
    for n in range(a1, a0):
        _stop(new, _app(n))
    _write(new.etc_dir / "programs.conf", render_programs(new))
    extension.updateGroup("web")
    extension.updateGroup("app")
    _write(new.etc_dir / "prometheus-targets.json", render_prometheus_targets(new))


@contextlib.contextmanager
def exclusive(cfg: StackConfig) -> Iterator[None]:
    """One `restart` or `scale` at a time on a stack (the lock dies with its holder)."""
    with open(cfg.run_dir / "operate.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StackError(
                "a `make restart` or `make scale` already runs on this stack"
            ) from None
        yield


def cmd_scale(cfg: StackConfig) -> int:
    """``WEB_PROCS`` / ``APP_PROCS`` from the environment applied to the running stack."""
    web = _int(os.environ, "WEB_PROCS", cfg.web_procs, 1, 64)
    app = _int(os.environ, "APP_PROCS", cfg.app_procs, 1, 32)
    if cfg.web_servers:
        raise StackError("nginx uses SHILLINGS_WEB_SERVERS: scale those web servers instead")
    if app != cfg.app_procs and (cfg.app_servers or cfg.app_procs == 0):
        raise StackError("the web processes use SHILLINGS_APP_SERVERS: APP_PROCS cannot change")
    print(f"shillings: scaling web {cfg.web_procs} -> {web}, app {cfg.app_procs} -> {app}")
    new = replace(cfg, web_procs=web, app_procs=app)
    scale(cfg, new)
    if not wait_ready(new):
        return 1
    print_status(new)
    return 0


def cmd_restart(cfg: StackConfig) -> int:
    """Restart app servers, then web processes, one at a time, waiting for /healthz between
    them. No request is lost: an app server answers what it read before exiting while web
    processes hold new requests; a stopping web process drains its connections (nginx's
    keep-alive connections included) and nginx sends new ones to the others. No nginx
    reload: a reload would close clients' idle keep-alive connections."""
    if cfg.app_procs == 1:
        print("shillings: one app server only: requests needing it wait while it restarts")
    names = [_app(n) for n in range(cfg.app_procs)] + [_web(n) for n in range(cfg.web_procs)]
    for name in names:
        subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(cfg.conf), "restart", name],
            env=_supervisord_env(cfg),
            check=True,
        )
        if not wait_ready(cfg):
            print(f"shillings: not healthy after restarting {name}", file=sys.stderr)
            return 1
    return 0


def cmd_ctl(cfg: StackConfig, args: list[str]) -> int:
    ctl = str(VENV_BIN / "supervisorctl")
    os.execve(ctl, [ctl, "-c", str(cfg.conf), *args], _supervisord_env(cfg))


def cmd_nginx(cfg: StackConfig) -> int:
    """Render nginx.conf alone and run nginx in the foreground (its own container)."""
    make_dirs(cfg)
    conf = cfg.etc_dir / "nginx.conf"
    _write(conf, render_nginx(cfg))
    nginx = find_binary("nginx")
    os.execv(nginx, [nginx, "-p", str(cfg.var / "nginx"), "-c", str(conf), "-e", "stderr"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stack.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command",
        choices=["render", "run", "start", "stop", "status", "restart", "scale", "ctl", "nginx"],
    )
    parser.add_argument("args", nargs=argparse.REMAINDER, help="supervisorctl arguments (ctl)")
    args = parser.parse_args(argv)
    try:
        cfg = StackConfig.from_env()
        if args.command in ("status", "restart", "scale"):
            cfg = running_config(cfg)
        if args.command == "ctl":
            return cmd_ctl(cfg, args.args)
        if args.command in ("restart", "scale"):
            if not supervisord_pid(cfg):
                raise StackError(f"the stack is not running (var: {cfg.var}); `make start` first")
            with exclusive(cfg):
                return cmd_restart(cfg) if args.command == "restart" else cmd_scale(cfg)
        commands = {
            "render": cmd_render,
            "run": cmd_run,
            "start": cmd_start,
            "stop": cmd_stop,
            "status": cmd_status,
            "nginx": cmd_nginx,
        }
        return commands[args.command](cfg)
    except StackError as e:
        print(f"shillings: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"shillings: {e}", file=sys.stderr)
        return 1
    except xmlrpc.client.Fault as e:
        print(f"shillings: supervisord refused: {e.faultString}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
