"""Bringing the stack up and down: render, run, start, stop, restart; nginx alone."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

from shillings_stack.config import VENV_BIN, StackConfig, StackError, find_binary
from shillings_stack.health import wait_ready
from shillings_stack.processes import (
    recover,
    signal_all,
    socket_served,
    stack_processes,
    stop_leftovers,
    wait_gone,
)
from shillings_stack.render import make_dirs, render, render_nginx, write_atomic
from shillings_stack.supervisor import (
    app_program,
    hooks_program,
    print_status,
    rpc,
    running_config,
    supervisord_env,
    supervisord_pid,
    web_program,
)


def ensure_jwt_secret(cfg: StackConfig) -> None:
    """Create the JWT secret file before app and web processes race to create it."""
    if os.environ.get("SHILLINGS_JWT_SECRET"):
        return
    from shillings_proto.secrets import load_or_create_secret

    load_or_create_secret(
        os.environ.get("SHILLINGS_JWT_SECRET_FILE") or str(cfg.var / "jwt_secret")
    )


def ensure_webhook_key(cfg: StackConfig) -> None:
    """Create the webhook key file before app servers and delivery workers race to create it."""
    from shillings_app.webhooks.secrets import WebhookKeyError, configured_key

    try:
        configured_key({**os.environ, "SHILLINGS_VAR": str(cfg.var)})
    except WebhookKeyError as e:
        raise StackError(str(e)) from None


def check_port_free(cfg: StackConfig) -> None:
    """Fail early, with a clear message, when nginx's address or a metrics port is taken (a
    metrics listener would only log that and retry, while whatever holds its port, such as
    another stack on this machine, answers its scrapes)."""
    check_bind(cfg.http_host, cfg.http_port, "set SHILLINGS_HTTP_PORT to a free port")
    for kind in ("app", "web", "hooks"):
        for target in cfg.metrics_targets(kind):
            port = int(target.rsplit(":", 1)[1])
            check_bind(
                cfg.metrics_host,
                port,
                "set SHILLINGS_METRICS_PORT_BASE to another multiple of 100 (0: no metrics"
                " listeners)",
            )


def check_bind(host: str, port: int, hint: str) -> None:
    """Raise a ``StackError`` ending in ``hint`` when ``host:port`` cannot be listened on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise StackError(f"cannot listen on {host}:{port} ({e.strerror}); {hint}") from None


def prepare(cfg: StackConfig) -> Path:
    """Everything before supervisord starts: leftovers of an unclean stop (processes, then
    files), port check, rendering, JWT secret, webhook key."""
    if socket_served(cfg.supervisor_socket):
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
    ensure_webhook_key(cfg)
    return conf


def cmd_render(cfg: StackConfig) -> int:
    """Write the rendered files only."""
    conf = render(cfg)
    print(f"rendered {cfg.etc_dir}/programs.conf and nginx.conf; supervisord config: {conf}")
    return 0


def cmd_run(cfg: StackConfig) -> int:
    """Exec supervisord in the foreground (Ctrl-C stops everything)."""
    if supervisord_pid(cfg):
        raise StackError(f"the stack already runs in the background (var: {cfg.var}); `make stop`")
    conf = prepare(cfg)
    print(f"shillings: starting in the foreground on {cfg.url} (Ctrl-C stops everything)")
    sys.stdout.flush()
    supervisord = str(VENV_BIN / "supervisord")
    os.execve(supervisord, [supervisord, "-n", "-c", str(conf)], supervisord_env(cfg))


def cmd_start(cfg: StackConfig) -> int:
    """Start supervisord in the background; return once every web process is healthy."""
    if supervisord_pid(cfg):
        print(f"shillings: already running (var: {cfg.var})")
        cfg = running_config(cfg)
    else:
        conf = prepare(cfg)
        subprocess.run(
            [str(VENV_BIN / "supervisord"), "-c", str(conf)],
            env=supervisord_env(cfg),
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


def cmd_stop(cfg: StackConfig) -> int:
    """Shut supervisord and every program down; leave no process of this stack behind."""
    pid = supervisord_pid(cfg)
    if pid is None:
        print(f"shillings: supervisord not running (var: {cfg.var})")
    else:
        try:
            rpc(cfg).shutdown()
        except (OSError, xmlrpc.client.Error):
            os.kill(pid, signal.SIGTERM)
        # Programs stop in reverse priority order; mariadb may take up to its stopwaitsecs.
        if not wait_gone([pid], 120.0):
            print(
                f"shillings: supervisord {pid} did not exit in 120 s; killing it", file=sys.stderr
            )
            signal_all([pid], signal.SIGKILL)
        print("shillings: stopped")
    stop_leftovers(cfg)
    still = stack_processes(cfg)
    if still:
        print(f"shillings: processes still alive: {sorted(still)}", file=sys.stderr)
        return 1
    return 0


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


def cmd_restart(cfg: StackConfig) -> int:
    """Restart app servers, then web processes, then delivery workers, one at a time,
    waiting for /healthz between them. No request is lost: an app server answers what it
    read before exiting while web processes hold new requests; a stopping web process
    drains its connections (nginx's keep-alive connections included) and nginx sends new
    ones to the others. No nginx reload: a reload would close clients' idle keep-alive
    connections."""
    if cfg.app_procs == 1:
        print("shillings: one app server only: requests needing it wait while it restarts")
    names = [app_program(n) for n in range(cfg.app_procs)] + [
        web_program(n) for n in range(cfg.web_procs)
    ]
    # Delivery workers last: a stopping one finishes its sends; what it had claimed and not
    # sent is claimed again by the others once its lease passes.
    names += [hooks_program(n) for n in range(cfg.hooks_procs)]
    for name in names:
        subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(cfg.conf), "restart", name],
            env=supervisord_env(cfg),
            check=True,
        )
        if not wait_ready(cfg):
            print(f"shillings: not healthy after restarting {name}", file=sys.stderr)
            return 1
    return 0


def cmd_nginx(cfg: StackConfig) -> int:
    """Render nginx.conf alone and run nginx in the foreground (its own container)."""
    make_dirs(cfg)
    conf = cfg.etc_dir / "nginx.conf"
    write_atomic(conf, render_nginx(cfg))
    nginx = find_binary("nginx")
    os.execv(nginx, [nginx, "-p", str(cfg.var / "nginx"), "-c", str(conf), "-e", "stderr"])
