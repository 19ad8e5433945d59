"""Is the stack healthy: /healthz through nginx and from each web process, the delivery
workers' metrics endpoints; waiting for it."""

from __future__ import annotations

import http.client
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from shillings_stack.config import StackConfig, StackError
from shillings_stack.supervisor import print_status, process_infos, supervisord_pid


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


def metrics_answer(target: str, timeout: float = 2.0) -> int:
    """Status code of ``GET http://<target>/metrics`` (``host:port``; 0: no answer)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    try:
        with opener.open(f"http://{target}/metrics", timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return 0


def all_healthy(cfg: StackConfig) -> bool:
    """/healthz is 200 through nginx and, for the embedded web processes, from each one
    (nginx retries a GET on another process, so one healthy answer proves little)."""
    if healthz(cfg, timeout=2.0)[0] != 200:
        return False
    if cfg.web_servers:
        return True
    return all(web_healthz(cfg.web_socket(n)) == 200 for n in range(cfg.web_procs))


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
                print_log_tail(cfg, name.split(":")[1])
            return False
        if not supervisord_pid(cfg):
            print(
                f"shillings: supervisord exited; see {cfg.log_dir}/supervisord.log", file=sys.stderr
            )
            return False
        time.sleep(0.25)
    return False


def print_log_tail(cfg: StackConfig, name: str, lines: int = 15) -> None:
    """The end of a program's log and of what supervisord caught of its stdout and stderr
    (web and app processes write their log themselves: render._process_group)."""
    for path in (cfg.log_dir / f"{name}.log", cfg.log_dir / f"{name}.stdout.log"):
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        print(f"--- {path} (last {len(tail)} lines)", file=sys.stderr)
        for line in tail:
            print(line, file=sys.stderr)


def cmd_status(cfg: StackConfig) -> int:
    """supervisorctl status, the /healthz answer and each delivery worker's ``GET /metrics``
    answer (when the stack has metrics listeners); 0 only when all of them are 200."""
    if not supervisord_pid(cfg):
        print(f"shillings: not running (var: {cfg.var})")
        return 3
    print(f"shillings: supervisord config {cfg.conf}")
    print_status(cfg)
    code, body = healthz(cfg)
    print(f"{cfg.url}/healthz: {code or 'unreachable'} {body.strip()}")
    hooks = []
    for n, target in enumerate(cfg.metrics_targets("hooks")):
        hooks.append(metrics_answer(target))
        print(f"hooks_{n:02d} metrics ({target}/metrics): {hooks[-1] or 'unreachable'}")
    return 0 if code == 200 and all(answer == 200 for answer in hooks) else 1


def wait_until(cfg: StackConfig, names: list[str], ready: Callable[[], bool]) -> None:
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
                print_log_tail(cfg, name.split(":")[1])
            raise StackError(f"not ready in time: {', '.join(fatal or names)}")
        time.sleep(0.1)
