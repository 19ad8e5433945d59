"""`make scale`: the running stack to new process counts while it serves."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from shillings_stack.config import StackConfig, StackError, env_int, find_binary
from shillings_stack.health import wait_ready, wait_until, web_healthz
from shillings_stack.processes import alive, children, socket_served
from shillings_stack.render import (
    render_nginx,
    render_programs,
    render_prometheus_targets,
    write_atomic,
)
from shillings_stack.supervisor import app_program, print_status, rpc, stop_program, web_program


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
    old_workers = children(master)
    os.kill(master, signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in old_workers) or not children(master) - old_workers:
        if time.monotonic() > deadline:
            raise StackError(f"nginx did not finish its reload in {timeout:.0f}s; see its log")
        time.sleep(0.05)


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
            stop_program(cfg, web_program(n))
        for n in batch:
            rpc(cfg).startProcess(web_program(n), False)
        names = [web_program(n) for n in batch]
        wait_until(cfg, names, functools.partial(_webs_ok, cfg, batch))
    reload_nginx(cfg, serving)


def _webs_ok(cfg: StackConfig, webs: Iterable[int]) -> bool:
    """Every web process of ``webs`` answers /healthz 200 on its own socket."""
    return all(web_healthz(cfg.web_socket(n), timeout=2.0) == 200 for n in webs)


def _apps_ok(cfg: StackConfig, apps: Iterable[int]) -> bool:
    """Every app server of ``apps`` accepts connections."""
    return all(socket_served(cfg.app_socket(n)) for n in apps)


def _stale_webs(cfg: StackConfig, webs: Iterable[int]) -> list[int]:
    """Those of the running web processes ``webs`` not using ``cfg``'s app servers."""
    wanted = f"SHILLINGS_APP_SERVERS={cfg.app_server_list}".encode()
    stale = []
    for n in webs:
        pid = int(rpc(cfg).getProcessInfo(web_program(n))["pid"])
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
    write_atomic(new.etc_dir / "programs.conf", render_programs(mid))
    write_atomic(new.etc_dir / "prometheus-targets.json", render_prometheus_targets(mid))
    extension.updateGroup("app")
    added_apps = list(range(a0, a1))
    wait_until(new, [app_program(n) for n in added_apps], lambda: _apps_ok(new, added_apps))
    extension.updateGroup("web")
    added_webs = list(range(w0, w1))
    wait_until(new, [web_program(n) for n in added_webs], lambda: _webs_ok(new, added_webs))
    serving = list(range(max(w0, w1)))
    if w1 > w0:
        reload_nginx(new, serving)
    roll_webs(new, _stale_webs(new, range(min(w0, w1))), serving)
    if (new.etc_dir / "nginx.conf").read_text(encoding="utf-8") != render_nginx(new):
        reload_nginx(new, range(w1))
    for n in range(w1, w0):
        stop_program(new, web_program(n))
    for n in range(a1, a0):
        stop_program(new, app_program(n))
    write_atomic(new.etc_dir / "programs.conf", render_programs(new))
    extension.updateGroup("web")
    extension.updateGroup("app")
    write_atomic(new.etc_dir / "prometheus-targets.json", render_prometheus_targets(new))


def cmd_scale(cfg: StackConfig) -> int:
    """``WEB_PROCS`` / ``APP_PROCS`` from the environment applied to the running stack."""
    web = env_int(os.environ, "WEB_PROCS", cfg.web_procs, 1, 64)
    app = env_int(os.environ, "APP_PROCS", cfg.app_procs, 1, 32)
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
