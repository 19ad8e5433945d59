#!/usr/bin/env python3
"""The cluster shape of Shillings on this one machine, under one supervisord.

    cluster.py start    3 MariaDB Galera nodes (joined one at a time; a joiner that leaves
                        the group is restarted), a Redis primary and replica with 3
                        sentinels, 2 app servers (each on its own Galera node, mutual TLS
                        on 127.0.0.1), webhook delivery workers (all on the third node),
                        web processes and nginx; returns once /healthz answers 200 through
                        nginx and every delivery worker its metrics (after a failed start:
                        `stop`)
    cluster.py stop     shut all of it down; leave no process behind
    cluster.py status   supervisorctl status, each Galera node's state, /healthz, each
                        delivery worker's metrics port
    cluster.py ctl ARGS supervisorctl -c <this cluster's config> ARGS

Everything listens on 127.0.0.1 only. Ports are SHILLINGS_CLUSTER_PORT_BASE (13300) plus an
offset (see ``ClusterConfig``), HTTP on SHILLINGS_HTTP_PORT (8090); state in SHILLINGS_VAR
(``var-cluster/`` of the checkout). Built on scripts/stack.py (rendering, supervisord,
recovery after an unclean stop).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cluster_render import (
    APPS,
    MASTER_NAME,
    NODES,
    PACKAGES,
    REDIS,
    SENTINELS,
    ClusterConfig,
    render_node_cnf,
    render_programs,
    render_sentinel_conf,
)

from shillings_stack.cli import cmd_ctl
from shillings_stack.config import ROOT, VENV_BIN, StackError, find_binary
from shillings_stack.health import healthz, print_log_tail, wait_ready, wait_until
from shillings_stack.lifecycle import (
    check_bind,
    check_port_free,
    cmd_stop,
    ensure_jwt_secret,
    ensure_webhook_key,
)
from shillings_stack.processes import recover, stop_leftovers
from shillings_stack.render import make_dirs, render_nginx, render_supervisord_conf, write_atomic
from shillings_stack.supervisor import (
    print_status,
    process_infos,
    rpc,
    stop_program,
    supervisord_env,
    supervisord_pid,
)


def ensure_packages() -> None:
    """Install Galera and mariabackup from apt when missing (CI starts from a clean clone)."""
    missing = [pkg for pkg, path in PACKAGES.items() if not os.path.exists(path)]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    print(f"cluster: installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    install = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    subprocess.run(install, check=True, env=env)


def _grastate(cfg: ClusterConfig, n: int) -> dict[str, str]:
    try:
        text = (cfg.node_dir(n) / "data" / "grastate.dat").read_text()
    except OSError:
        return {}
    return dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in text.splitlines())
    )


def bootstrap_node(cfg: ClusterConfig) -> int:
    """The node that starts a new cluster: the one Galera marked safe to bootstrap (the last
    to stop cleanly); else the highest seqno the grastate files record; else node 1 (a new
    cluster). After a crash of all nodes every grastate says -1: node 1 then bootstraps and
    galera_node.sh sets it safe, which can drop the last transactions another node had
    committed; to avoid that, compare `mariadbd --wsrep-recover` positions by hand first
    (docs/DEPLOYMENT.md)."""
    states = {n: _grastate(cfg, n) for n in NODES}
    safe = [n for n, s in states.items() if s.get("safe_to_bootstrap") == "1"]
    if safe:
        return safe[0]
    seqnos = {n: int(s.get("seqno", "-1") or -1) for n, s in states.items() if s}
    if seqnos and max(seqnos.values()) >= 0:
        return max(seqnos, key=lambda n: seqnos[n])
    return 1


def node_query(cfg: ClusterConfig, n: int, sql: str) -> list[tuple[object, ...]]:
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=cfg.mysql_port(n), user="root", connect_timeout=3)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def node_state(cfg: ClusterConfig, n: int) -> str:
    """``Synced``, ``Joiner``, ``Donor/Desynced``, ... or ``down``."""
    try:
        rows = node_query(cfg, n, "SHOW STATUS LIKE 'wsrep_local_state_comment'")
    except Exception:
        return "down"
    return str(rows[0][1]) if rows else "down"


LEFT_GROUP = "Initialized"
"""``wsrep_local_state_comment`` of a node whose mariadbd runs outside any primary component.
A joining node is down until its state transfer is done, then Synced; a CI run once saw the
third node reach ``joined``, fall into a non-primary view of itself alone and stay there."""


@dataclass
class JoinWatch:
    """When a joining node that left the group instead of syncing is restarted: after
    ``rejoin_after`` seconds outside it, at most ``max_rejoins`` times (the restart rejoins by
    IST or SST, as after a crash)."""

    rejoin_after: float = 15.0
    max_rejoins: int = 2
    rejoins: int = 0
    left_since: float | None = None

    def restart_due(self, state: str, now: float) -> bool:
        if state != LEFT_GROUP:
            self.left_since = None
            return False
        if self.left_since is None:
            self.left_since = now
        if now - self.left_since < self.rejoin_after or self.rejoins >= self.max_rejoins:
            return False
        self.rejoins += 1
        self.left_since = None
        return True


def restart_node(cfg: ClusterConfig, n: int) -> None:
    stop_program(cfg.stack(), f"galera_{n}:galera_{n}")
    start_node(cfg, n)


def wait_synced(cfg: ClusterConfig, n: int, timeout: float, watch: JoinWatch | None) -> None:
    """Until node ``n`` is Synced; with a ``watch`` (a joining node) it is restarted when
    it leaves the group instead."""
    deadline = time.monotonic() + timeout
    while True:
        state = node_state(cfg, n)
        if state == "Synced":
            return
        if watch is not None and watch.restart_due(state, time.monotonic()):
            print(f"cluster: galera_{n} left the group while joining: restart {watch.rejoins}")
            restart_node(cfg, n)
        fatal = [i["name"] for i in process_infos(cfg.stack()) if i["statename"] == "FATAL"]
        if fatal or time.monotonic() > deadline:
            print_log_tail(cfg.stack(), f"galera_{n}", 30)
            raise StackError(f"Galera node {n} not synced: {state}; FATAL: {fatal}")
        time.sleep(0.5)


def sentinel_view(cfg: ClusterConfig, n: int) -> dict[str, str]:
    """``SENTINEL MASTER`` as sentinel ``n`` sees it (empty when it does not answer)."""
    cli = [find_binary("redis-cli"), "-h", "127.0.0.1", "-p", str(cfg.sentinel_port(n))]
    done = subprocess.run(
        [*cli, "--raw", "sentinel", "master", MASTER_NAME],
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )
    lines = done.stdout.splitlines()
    return dict(zip(lines[::2], lines[1::2], strict=False))


def wait_sentinels(cfg: ClusterConfig, deadline: float) -> None:
    """Until every sentinel knows the other two and the replica (it can then fail over)."""
    while True:
        views = [sentinel_view(cfg, n) for n in SENTINELS]
        if all(v.get("num-other-sentinels") == "2" and v.get("num-slaves") == "1" for v in views):
            return
        if time.monotonic() > deadline:
            raise StackError(f"sentinels not ready: {views}")
        time.sleep(0.5)


def hooks_metrics(cfg: ClusterConfig, n: int) -> int:
    """Status code of delivery worker ``n``'s ``GET /metrics`` (0: no answer)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    url = f"http://127.0.0.1:{cfg.hooks_metrics_port(n)}/metrics"
    try:
        with opener.open(url, timeout=2.0) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return 0


def hooks_healthy(cfg: ClusterConfig) -> bool:
    return all(hooks_metrics(cfg, n) == 200 for n in range(cfg.hooks_procs))


def start_node(cfg: ClusterConfig, n: int) -> None:
    try:
        rpc(cfg.stack()).startProcess(f"galera_{n}:galera_{n}", False)
    except xmlrpc.client.Fault as e:
        if "ALREADY_STARTED" not in e.faultString:
            raise


def prepare(cfg: ClusterConfig) -> Path:
    """Like stack.py's prepare: leftovers of an unclean stop, port check, rendering."""
    st = cfg.stack()
    stop_leftovers(st)
    removed = recover(st)
    if removed:
        print(f"cluster: removed leftovers of an unclean stop: {', '.join(removed)}")
    check_port_free(st)
    for n in range(cfg.hooks_procs):
        hint = "set SHILLINGS_CLUSTER_PORT_BASE to a free range"
        check_bind("127.0.0.1", cfg.hooks_metrics_port(n), hint)
    make_dirs(st)
    for n in NODES:
        cfg.node_dir(n).mkdir(parents=True, exist_ok=True)
        write_atomic(cfg.node_dir(n) / "my.cnf", render_node_cnf(cfg, n))
    for n in REDIS:
        node = cfg.var / "redis" / f"node{n}"
        node.mkdir(parents=True, exist_ok=True)
        (node / "started").unlink(missing_ok=True)  # a new start: node 1 is primary again
    for n in SENTINELS:
        (cfg.var / "redis" / f"sentinel{n}").mkdir(parents=True, exist_ok=True)
        write_atomic(
            cfg.var / "redis" / f"sentinel{n}" / "sentinel.conf", render_sentinel_conf(cfg, n)
        )
    if not (cfg.tls_dir / "web.pem").exists():
        apps = ",".join(f"app-{n}" for n in APPS)
        certs = [str(VENV_BIN / "python"), str(ROOT / "scripts" / "certs.py")]
        subprocess.run([*certs, str(cfg.tls_dir), "--app", apps, "--web", "web"], check=True)
    write_atomic(st.etc_dir / "nginx.conf", render_nginx(st))
    write_atomic(st.etc_dir / "programs.conf", render_programs(cfg))
    write_atomic(st.conf, render_supervisord_conf(st))
    ensure_jwt_secret(st)
    ensure_webhook_key(st)
    return st.conf


def cmd_start(cfg: ClusterConfig) -> int:
    st = cfg.stack()
    if supervisord_pid(st):
        print(f"cluster: already running (var: {cfg.var})")
        return 0 if wait_ready(st) else 1
    ensure_packages()
    conf = prepare(cfg)
    first = bootstrap_node(cfg)
    (cfg.node_dir(first) / "bootstrap").write_text("")
    env = {**supervisord_env(st), "SHILLINGS_REDIS_SENTINELS": cfg.sentinels}
    env["SHILLINGS_REDIS_MASTER_NAME"] = MASTER_NAME
    subprocess.run([str(VENV_BIN / "supervisord"), "-c", str(conf)], env=env, check=True)
    began = time.monotonic()
    for name in [f"redis_{n}" for n in REDIS] + [f"sentinel_{n}" for n in SENTINELS]:
        rpc(st).startProcess(name, False)
    start_node(cfg, first)
    wait_synced(cfg, first, cfg.start_timeout, None)
    for n in NODES:  # one at a time: one state transfer at a time from the same donor
        if n != first:
            start_node(cfg, n)
            wait_synced(cfg, n, cfg.start_timeout, JoinWatch())
    print(f"cluster: 3 Galera nodes synced in {time.monotonic() - began:.0f}s")
    # Migrations run once for the cluster, on one node; the app servers find none pending.
    migrate_env = {**env, "SHILLINGS_MYSQL_DSN": cfg.dsn(first)}
    subprocess.run([str(VENV_BIN / "shillings-app"), "migrate"], env=migrate_env, check=True)
    for n in APPS:
        rpc(st).startProcess(f"app:app_{n:02d}", False)
    for name in cfg.hooks_programs:
        rpc(st).startProcess(name, False)
    wait_sentinels(cfg, began + cfg.start_timeout)
    try:
        ready = wait_ready(st)
        if ready:
            wait_until(st, cfg.hooks_programs, lambda: hooks_healthy(cfg))
    except StackError as e:
        print(f"cluster: delivery workers: {e}", file=sys.stderr)
        ready = False
    if not ready:
        print_status(st)
        print(f"cluster: not ready; logs in {cfg.var / 'log'} (`make cluster-stop`)")
        return 1
    print_status(st)
    print(f"cluster: ready on {st.url}")
    return 0


def cmd_status(cfg: ClusterConfig) -> int:
    st = cfg.stack()
    if not supervisord_pid(st):
        print(f"cluster: not running (var: {cfg.var})")
        return 3
    print_status(st)
    for n in NODES:
        print(f"galera node{n} (127.0.0.1:{cfg.mysql_port(n)}): {node_state(cfg, n)}")
    code, body = healthz(st)
    print(f"{st.url}/healthz: {code or 'unreachable'} {body.strip()}")
    hooks = [hooks_metrics(cfg, n) for n in range(cfg.hooks_procs)]
    for n, answer in enumerate(hooks):
        port = cfg.hooks_metrics_port(n)
        print(f"hooks_{n:02d} metrics (127.0.0.1:{port}/metrics): {answer or 'unreachable'}")
    return 0 if code == 200 and all(answer == 200 for answer in hooks) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cluster.py", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status", "ctl", "render"])
    parser.add_argument("args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        cfg = ClusterConfig.from_env()
        if args.command == "start":
            return cmd_start(cfg)
        if args.command == "stop":
            return cmd_stop(cfg.stack())
        if args.command == "status":
            return cmd_status(cfg)
        if args.command == "render":
            print(prepare(cfg))
            return 0
        return cmd_ctl(cfg.stack(), args.args)
    except StackError as e:
        print(f"cluster: {e}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as e:
        print(f"cluster: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
