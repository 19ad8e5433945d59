"""The files the stack runs on, rendered from a ``StackConfig`` into var/etc/: supervisord's
programs, nginx.conf, the Prometheus scrape configuration and its targets."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from shillings_stack.config import (
    NGINX_TEMPLATE,
    ROOT,
    ROOT_CONF,
    VENV_BIN,
    StackConfig,
    StackError,
    find_binary,
)


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
    cfg: StackConfig, name: str, command: str, numprocs: int, env: Mapping[str, str], priority: int
) -> str:
    """A [program:…] section of ``numprocs`` processes named ``<name>_00``, ``<name>_01``, …

    Each writes its log to ``<name>_NN.log`` itself (``--log-file``); supervisord keeps only
    what else reaches stdout or stderr (a start-up error, a crash) in ``<name>_NN.stdout.log``.
    In a container (``log_stdout``) everything goes to stdout instead."""
    log = f"{cfg.log_dir}/%(program_name)s_%(process_num)02d"
    if not cfg.log_stdout:
        command = f"{command} --log-file {log}.log"
        log += ".stdout"
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
stdout_logfile = {log}.log
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
                cfg, "app", f"{VENV_BIN / 'shillings-app'} serve", cfg.app_procs, app_env, 20
            )
        )
    if cfg.hooks_procs > 0:
        hooks_env = {"SHILLINGS_VAR": str(var), **cfg.metrics_env("hooks")}
        parts.append(
            _process_group(
                cfg, "hooks", f"{VENV_BIN / 'shillings-app'} hooks", cfg.hooks_procs, hooks_env, 25
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
        _process_group(cfg, "web", str(VENV_BIN / "shillings-web"), cfg.web_procs, web_env, 30)
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
        "# Rendered by scripts/stack.py: scrape every app, web and hooks process of this stack.\n"
        "# Use as prometheus.yml, or copy the job into yours (docs/ARCHITECTURE.md, Metrics).\n"
        "scrape_configs:\n"
        "  - job_name: shillings\n"
        "    file_sd_configs:\n"
        f"      - files: [{json.dumps(str(targets))}]\n"
    )


def render_prometheus_targets(cfg: StackConfig) -> str:
    """Every app, web and hooks process's metrics address, labelled with its group and
    name."""
    groups = []
    for kind in ("app", "web", "hooks"):
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
            raise StackError(f"supervisord.conf no longer contains {old!r}; update render.py")
        text = text.replace(old, new)
    header = (
        f"; Rendered by scripts/stack.py from {ROOT_CONF} for SHILLINGS_VAR={cfg.var}.\n"
        f"; Operate with: {VENV_BIN / 'supervisorctl'} -c {cfg.etc_dir / 'supervisord.conf'}\n"
    )
    return header + text


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` atomically, so a running reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def make_dirs(cfg: StackConfig) -> None:
    """var/ and its subdirectories (run/ private to this user)."""
    for path in (cfg.var, cfg.run_dir, cfg.etc_dir, cfg.log_dir, cfg.var / "redis"):
        path.mkdir(parents=True, exist_ok=True)
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (cfg.var / "nginx" / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(cfg.run_dir, 0o700)


def render(cfg: StackConfig) -> Path:
    """Write every rendered file under var/etc/; return the supervisord config to use."""
    cfg.check_socket_paths()
    make_dirs(cfg)
    write_atomic(cfg.etc_dir / "nginx.conf", render_nginx(cfg))
    write_atomic(cfg.etc_dir / "programs.conf", render_programs(cfg))
    write_atomic(cfg.etc_dir / "prometheus.yml", render_prometheus(cfg))
    write_atomic(cfg.etc_dir / "prometheus-targets.json", render_prometheus_targets(cfg))
    if cfg.conf != ROOT_CONF:
        write_atomic(cfg.conf, render_supervisord_conf(cfg))
    return cfg.conf
