"""Pay through the cluster shape (scripts/cluster.py: three MariaDB Galera nodes, Redis with
Sentinel, mutual TLS between web and app servers, nginx on its own port), seeded the way the
single-node stacks are (bench/seed.py), so that RESULTS.md shows its rows beside theirs."""

from __future__ import annotations

import argparse
import functools
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.seed import seed
from bench.stackctl import ROOT, caller_env, free_port, free_port_base, short_tempdir
from bench.tables import at, point_row, ratio, table
from bench.wrk import Point, best_of, run_wrk

CLUSTER_PY = ROOT / "scripts" / "cluster.py"
WEB_PROCS = 2
APP_SERVERS = 2
"""scripts/cluster_render.py's APPS: two app servers, each on its own Galera node."""
GALERA_NODES = 3


@dataclass
class ClusterStack:
    """One private cluster (own var dir, port range and HTTP port) started for a run."""

    bcrypt_cost: int
    var: Path = field(default_factory=lambda: short_tempdir("shc-"))
    port_base: int = field(default_factory=free_port_base)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mysql_socket(self) -> Path:
        """Galera node 1's socket (the seed's rows replicate to the other two)."""
        return self.var / "run" / "galera_1.sock"

    @property
    def jwt_secret_file(self) -> Path:
        return self.var / "jwt_secret"

    def env(self) -> dict[str, str]:
        env = caller_env()
        env.update(
            SHILLINGS_VAR=str(self.var),
            SHILLINGS_CLUSTER_PORT_BASE=str(self.port_base),
            SHILLINGS_HTTP_PORT=str(self.port),
            WEB_PROCS=str(WEB_PROCS),
            SHILLINGS_BCRYPT_COST=str(self.bcrypt_cost),
            SHILLINGS_LOGIN_MAX_FAILURES="1000000",
        )
        return env

    def _run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(CLUSTER_PY), command],
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=360,
            check=False,
        )

    def start(self) -> None:
        proc = self._run("start")
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"cluster start failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")

    def stop(self) -> None:
        proc = self._run("stop")
        shutil.rmtree(self.var, ignore_errors=True)
        if proc.returncode != 0:
            raise RuntimeError(f"cluster stop failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def _pay(url: str, users_file: Path, c: int, seconds: float) -> tuple[Point, None]:
    point = run_wrk("pay", url, connections=c, seconds=seconds, mode="pay", users_file=users_file)
    return point, None


def run(args: argparse.Namespace, conns: list[int], log: Callable[[str], None]) -> dict[str, Any]:
    """Start a cluster, seed ``args.users`` users, measure pay at each of ``conns``, stop it."""
    stack = ClusterStack(bcrypt_cost=args.bcrypt_cost)
    began = time.monotonic()
    stack.start()
    try:
        seeded = seed(
            stack.mysql_socket,
            stack.jwt_secret_file,
            stack.var / "bench",
            users=args.users,
            history_rows=10,
            bcrypt_cost=args.bcrypt_cost,
        )
        log(
            f"cluster ({GALERA_NODES} Galera nodes) up and seeded"
            f" in {time.monotonic() - began:.1f}s"
        )
        pay = functools.partial(_pay, stack.url, seeded.users_file)
        if args.warmup > 0:
            pay(16, args.warmup)
        points = []
        for c in conns:
            point, _ = best_of(args.repeats, functools.partial(pay, c, args.duration))
            log(
                f"  cluster pay c={c}: {point['rps']} req/s (runs {point['rps_runs']})"
                f" p50={point['p50_ms']}ms p99={point['p99_ms']}ms errors={point['errors']}"
            )
            points.append(point)
    finally:
        stack.stop()
    return {
        "web": WEB_PROCS,
        "app": APP_SERVERS,
        "galera_nodes": GALERA_NODES,
        "pay": points,
    }


def render_pay(cluster: dict[str, Any], single: list[dict[str, Any]]) -> list[str]:
    """RESULTS.md's rows of pay through the cluster, beside the single-node pay rows."""
    out = [
        "#### POST /v1/pay through the cluster (`make cluster-start`: scripts/cluster.py)",
        "",
        f"{cluster['galera_nodes']} MariaDB Galera nodes, Redis with a replica and 3 Sentinels,"
        f" {cluster['app']} app servers (each on its own Galera node, mutual TLS from the"
        f" web processes), {cluster['web']} web processes and nginx — all on this one machine,"
        " so slower than the single node: the point is that it keeps every promise (see"
        " docs/RELIABILITY.md) and that each tier can move to its own hosts. Last column:"
        " req/s ÷ the single-node pay above at the same connection count.",
        "",
    ]
    rows = [[*point_row(p), ratio(p["rps"], at(single, p["connections"]))] for p in cluster["pay"]]
    return out + table(["conns", "req/s", "p50 ms", "p99 ms", "errors", "÷ single node"], rows)
