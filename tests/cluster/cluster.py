"""A whole cluster shape (scripts/cluster.py) for the cluster tests: 3 Galera nodes, 2 app
servers on different nodes, web processes and nginx, in a private var dir and port range."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from shillings_stack.health import web_healthz
from tests.stack.helpers import ROOT, SUPERVISORCTL, clean_env

PY = str(ROOT / ".venv" / "bin" / "python")


def free_port_base(span: int = 90) -> int:
    """A base port whose next ``span`` ports are all free on 127.0.0.1."""
    for base in range(20000, 60000, 97):
        socks = []
        try:
            for port in range(base, base + span):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port range")


@dataclass
class Cluster:
    var: Path
    port_base: int
    port: int
    env: dict[str, str]

    def run(self, command: str, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PY, str(ROOT / "scripts" / "cluster.py"), command],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ctl(self, *args: str) -> str:
        conf = str(self.var / "etc" / "supervisord.conf")
        done = subprocess.run(
            [SUPERVISORCTL, "-c", conf, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return done.stdout

    def pid_of(self, name: str) -> int | None:
        out = self.ctl("pid", name).strip()
        return int(out) if out.isdigit() and int(out) > 0 else None

    def client_pids(self, node: int) -> set[int]:
        """The processes with a TCP connection to Galera node ``node`` (``ss -p``)."""
        done = subprocess.run(
            ["ss", "-tnpH", "state", "established", f"dport = :{self.mysql_port(node)}"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return {int(pid) for pid in re.findall(r"pid=(\d+)", done.stdout)}

    def kill9(self, name: str) -> int:
        """SIGKILL program ``name`` (supervisord restarts it); the pid killed."""
        pid = self.pid_of(name)
        assert pid is not None, f"{name} is not running"
        os.kill(pid, signal.SIGKILL)
        return pid

    def mysql_port(self, node: int) -> int:
        return self.port_base + 10 + node

    @property
    def mysql_socket(self) -> str:
        """Node 1's socket (what tests/reliability/ledger.py's reconcile reads)."""
        return str(self.var / "run" / "galera_1.sock")

    def connect(self, node: int = 1, **kwargs: Any) -> pymysql.connections.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.mysql_port(node),
            user="root",
            database="shillings",
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    def dsn(self, node: int) -> str:
        return f"mysql://root@127.0.0.1:{self.mysql_port(node)}/shillings"

    def query(self, sql: str, args: Any = None, node: int = 1) -> list[tuple[Any, ...]]:
        conn = self.connect(node)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def node_state(self, node: int) -> str:
        try:
            rows = self.query("SHOW STATUS LIKE 'wsrep_local_state_comment'", node=node)
        except pymysql.err.MySQLError:
            return "down"
        return str(rows[0][1]) if rows else "down"

    def wait_synced(self, timeout: float = 180.0) -> float:
        """Wait until all 3 nodes are Synced; the seconds it took."""
        began = time.monotonic()
        while True:
            states = [self.node_state(n) for n in (1, 2, 3)]
            if states == ["Synced"] * 3:
                return time.monotonic() - began
            assert time.monotonic() - began < timeout, f"nodes not synced: {states}"
            time.sleep(0.2)

    def redis(self, port: int, *args: str) -> str:
        """One command to the Redis (or sentinel) on ``port``; its --raw answer."""
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(port), "--raw", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return done.stdout.strip()

    def redis_primary(self) -> int:
        """The port of the Redis primary the first sentinel names."""
        answer = self.redis(self.port_base + 71, "sentinel", "get-master-addr-by-name", "shillings")
        return int(answer.split()[-1])

    def redis_program(self, port: int) -> str:
        return f"redis_{port - self.port_base - 59}"

    def wait_web_healthy(self, timeout: float = 60.0) -> float:
        """Until every web process answers /healthz 200 on its socket; the seconds it took."""
        began = time.monotonic()
        socks = sorted((self.var / "run").glob("web_*.sock"))
        while not all(web_healthz(sock, timeout=2.0) == 200 for sock in socks):
            assert time.monotonic() - began < timeout, "web processes not healthy"
            time.sleep(0.1)
        return time.monotonic() - began

    def hooks_metrics_port(self, n: int) -> int:
        return self.port_base + 80 + n

    def log_text(self, name: str) -> str:
        return (self.var / "log" / f"{name}.log").read_text(errors="replace")


def start_cluster(**extra: str) -> Cluster:
    var = Path(tempfile.mkdtemp(prefix="shl-cl-", dir="/tmp"))
    base = free_port_base()
    http = base + 79
    env = clean_env(
        SHILLINGS_VAR=str(var),
        SHILLINGS_CLUSTER_PORT_BASE=str(base),
        SHILLINGS_HTTP_PORT=str(http),
        SHILLINGS_BCRYPT_COST="4",
        SHILLINGS_SIGNUP_MAX="1000",
        SHILLINGS_WEBHOOK_ALLOW="127.0.0.0/8",  # the test receiver (tests/cluster/test_hooks.py)
        **extra,
    )
    cluster = Cluster(var=var, port_base=base, port=http, env=env)
    started = cluster.run("start")
    if started.returncode != 0:
        stop_cluster(cluster)
        raise AssertionError(f"cluster start failed:\n{started.stdout}\n{started.stderr}")
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    stopped = cluster.run("stop")
    shutil.rmtree(cluster.var, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
