"""``python -m bench``: run the whole benchmark and write bench/RESULTS.md.

Order: baselines (a) nginx ``return 200`` and (b) bare Klein behind nginx; then the main
stack (WEB_PROCS x APP_PROCS), seeded in SQL, with every endpoint at each connection count,
baseline (c) (raw pymysql pay transactions against the same MariaDB) and (c''), the pay SQL
before the fewer-round-trips fix, a py-spy profile of one web and one app process under the
pay load, and peak RSS; then one stack per scaling shape for pay and account; then pay
through the cluster shape (bench/cluster.py). Every stack is private (own var dir, free
port) and stopped before the next one starts.
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import batches, cluster, dbceiling, hooks, micro, plots, profile, report
from bench.baselines import Baselines
from bench.endpoints import ENDPOINTS
from bench.machine import bcrypt_per_core, machine, versions
from bench.options import parse_args, parse_shapes
from bench.seed import Seeded, seed
from bench.stackctl import Stack
from bench.wrk import Point, best_of, run_wrk

HISTORY_PAGE = 10
"""limit= of the history requests: both users' pages then hold 10 rows, so the two differ
only in the size of the history behind the page."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- runs ----------------------------------------------------------------------------------


def run_endpoint(
    stack: Stack, seeded: Seeded, name: str, connections: int, seconds: float
) -> Point:
    endpoint = ENDPOINTS[name]
    return run_wrk(
        name,
        stack.url,
        connections=connections,
        seconds=seconds * endpoint.duration_factor,
        mode=endpoint.mode,
        users_file=endpoint.users_path(seeded),
        password=endpoint.password,
        limit=HISTORY_PAGE,
        timeout_s=endpoint.timeout_s,
    )


def warm_account_cache(stack: Stack, seeded: Seeded, threads: int = 4) -> None:
    """GET /v1/account once for every bench user, so that the account runs read the
    Redis-cached profile: the pays and top-ups measured before them invalidated the cached
    profiles of the users they touched, and a first read after that goes to the app server.
    On a stack younger than its cache's grace period every read bypasses the cache: that is
    waited out first (``Stack.wait_cache_settled``)."""
    tokens = [line.split("\t")[2] for line in seeded.users_file.read_text().splitlines()]
    failed: list[int] = []
    stack.wait_cache_settled(tokens[0])

    def worker(part: list[str]) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=15)
        try:
            for token in part:
                conn.request("GET", "/v1/account", headers={"Authorization": f"Bearer {token}"})
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    failed.append(response.status)
        finally:
            conn.close()

    workers = [threading.Thread(target=worker, args=(tokens[n::threads],)) for n in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    if failed:
        raise RuntimeError(f"warming the account cache: {len(failed)} answers not 200")


def start_seeded(
    args: argparse.Namespace, web: int, app: int, history_rows: int
) -> tuple[Stack, Seeded]:
    settings = dict(item.split("=", 1) for item in args.setting)
    stack = Stack(web_procs=web, app_procs=app, bcrypt_cost=args.bcrypt_cost, settings=settings)
    began = time.monotonic()
    stack.start()
    try:
        seeded = seed(
            stack.mysql_socket,
            stack.jwt_secret_file,
            stack.var / "bench",
            users=args.users,
            history_rows=history_rows,
            bcrypt_cost=args.bcrypt_cost,
        )
    except BaseException:
        stack.stop()
        raise
    log(f"stack web={web} app={app} up and seeded in {time.monotonic() - began:.1f}s")
    return stack, seeded


def cpu_split(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], point: Point
) -> dict[str, float]:
    """CPU milliseconds per request of each kind of process during one measured point."""
    spent: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        if pid in before:
            spent[name] = spent.get(name, 0.0) + seconds - before[pid][1]
    requests = max(1, point.requests)
    return {name: round(s * 1000 / requests, 3) for name, s in sorted(spent.items()) if s > 0}


def profile_pay(args: argparse.Namespace, stack: Stack, seeded: Seeded, work: Path) -> dict:
    """py-spy of web_00 and app_00 while pay runs at the largest connection count."""
    pids = stack.pids()
    seconds = args.profile_seconds
    connections = max(int(c) for c in args.connections.split(","))
    result: dict[str, Any] = {"connections": connections, "seconds": seconds}
    load: list[Point] = []
    loader = threading.Thread(
        target=lambda: load.append(run_endpoint(stack, seeded, "pay", connections, seconds + 1.5))
    )
    loader.start()
    time.sleep(0.5)
    recorders = {}
    for role in ("web_00", "app_00"):
        out = work / f"pyspy-{role}.txt"
        recorders[role] = (profile.start_record(pids[role], out, seconds), out)
    for role, (proc, out) in recorders.items():
        _, err = proc.communicate(timeout=seconds + 30)
        if proc.returncode != 0 or not out.exists():
            log(f"  py-spy {role} failed: {err.decode(errors='replace')[-300:]}")
            continue
        raw = out.read_text()
        if args.keep_profiles:
            (args.out.parent / f"{args.out.stem}-profile-{role}.txt").write_text(raw)
        summary = profile.summarise(role, raw)
        result[role] = summary.as_dict()
        share = 100 / max(1, summary.samples)
        top = ", ".join(f"{c} {n * share:.0f}%" for c, n in summary.categories.most_common(5))
        log(f"  profile {role}: {summary.samples} samples; {top}")
    loader.join()
    if load:
        result["pay_under_profiler"] = load[0].as_dict()
    return result


BASELINES = ("nginx_static", "klein_const")
CEILINGS = ("db_pay_ceiling", dbceiling.OLD_SQL_CEILING)


def run_main_stack(args: argparse.Namespace, conns: list[int], results: dict[str, Any]) -> None:
    """Baselines and endpoints interleaved, connection count by connection count, so that
    each ratio compares figures measured within seconds of each other."""
    base = Baselines(klein_procs=args.web)
    log(f"baselines: nginx return 200, {args.web} bare Klein process(es) behind nginx")
    base.start()
    stack: Stack | None = None
    try:
        stack, seeded = start_seeded(args, args.web, args.app, args.history_rows)
        urls = {"nginx_static": base.static_url, "klein_const": base.klein_url}
        active = stack

        seen: dict[str, dict[str, list[dict[str, Any]]]] = {}
        ceiling_cpu: dict[str, dict[str, float]] = {}

        def measure(name: str, c: int) -> tuple[Point, dict[str, float] | None]:
            if name in urls:
                return run_wrk(name, urls[name], connections=c, seconds=args.duration), None
            if name in CEILINGS:
                before, own = active.cpu_seconds(), os.times()
                point = dbceiling.run_pay_ceiling(
                    active.mysql_socket,
                    seeded.users_file,
                    threads=c,
                    seconds=args.duration,
                    old_sql=name == dbceiling.OLD_SQL_CEILING,
                )
                # MariaDB's CPU, and the pymysql threads' (this process) as its client.
                db = cpu_split(before, active.cpu_seconds(), point).get("mariadbd", 0.0)
                used = sum(os.times()[:2]) - sum(own[:2])
                ceiling_cpu.setdefault(name, {})[str(c)] = round(
                    db + used * 1000 / max(1, point.requests), 3
                )
                return point, None
            batched = name in batches.OPERATIONS
            sizes = batches.scrape(active) if batched else {}
            before = active.cpu_seconds()
            point = run_endpoint(active, seeded, name, c, args.duration)
            split = cpu_split(before, active.cpu_seconds(), point)
            if batched:
                run = batches.seen(sizes, batches.scrape(active), name)
                seen.setdefault(name, {}).setdefault(str(c), []).append(run)
            return point, split

        endpoints = [n for n in ENDPOINTS if n in args.endpoints.split(",")]
        if args.warmup > 0:
            for name in BASELINES:
                run_wrk(f"{name}_warmup", urls[name], connections=16, seconds=args.warmup)
            for name in endpoints:
                run_endpoint(stack, seeded, name, 16, args.warmup)
        figures: dict[str, list[dict[str, Any]]] = {
            n: [] for n in (*BASELINES, *endpoints, *CEILINGS)
        }
        cpu: dict[str, dict[str, dict[str, float]]] = {name: {} for name in endpoints}
        for c in conns:
            for name in (*BASELINES, *endpoints, *CEILINGS):
                if name == "account":
                    warm_account_cache(stack, seeded)
                point, split = best_of(args.repeats, functools.partial(measure, name, c))
                figures[name].append(point)
                if split is not None:
                    cpu[name][str(c)] = split
                log(
                    f"  {name} c={c}: {point['rps']} req/s (runs {point['rps_runs']})"
                    f" p50={point['p50_ms']}ms p99={point['p99_ms']}ms errors={point['errors']}"
                )
        results["baselines"] = {n: figures[n] for n in (*BASELINES, *CEILINGS)}
        results["endpoints"] = {n: figures[n] for n in endpoints}
        results["cpu_per_request_ms"] = {n: by_c[str(max(conns))] for n, by_c in cpu.items()}
        results["cpu_per_request_ms_by_connections"] = cpu
        results["ceiling_cpu_per_payment_ms"] = ceiling_cpu
        results["batch_sizes"] = {
            name: {c: batches.merge(runs) for c, runs in by_c.items()}
            for name, by_c in seen.items()
        }
        if args.profile_seconds > 0 and "pay" in endpoints:
            results["profile"] = profile_pay(args, stack, seeded, stack.var / "bench")
        results["rss_kib"] = stack.peak_rss()
        results["seed"] = {"users": seeded.users, "history_rows": seeded.history_rows}
    finally:
        if stack is not None:
            stack.stop()
        base.stop()


def _no_cpu(
    stack: Stack, seeded: Seeded, name: str, c: int, seconds: float
) -> tuple[Point, dict[str, float] | None]:
    return run_endpoint(stack, seeded, name, c, seconds), None


def run_scaling(
    args: argparse.Namespace, results: dict[str, Any], shapes: list[tuple[int, int]]
) -> None:
    rows = []
    c = args.scaling_connections
    for web, app in shapes:
        stack, seeded = start_seeded(args, web, app, 10)
        try:
            row: dict[str, Any] = {"web": web, "app": app, "connections": c}
            for name in ("account", "pay"):
                if args.warmup > 0:
                    run_endpoint(stack, seeded, name, 16, args.warmup)
                if name == "account":
                    warm_account_cache(stack, seeded)
                point, _ = best_of(
                    args.repeats,
                    functools.partial(_no_cpu, stack, seeded, name, c, args.duration),
                )
                log(f"  scaling web={web} app={app} {name}: {point['rps']} req/s")
                row[name] = point
            row["rss_kib"] = stack.peak_rss()
            rows.append(row)
        finally:
            stack.stop()
    results["scaling"] = rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    conns = [int(c) for c in args.connections.split(",") if c.strip()]
    began = time.monotonic()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
        "machine": machine(),
        "versions": versions(),
        "params": {
            "duration_s": args.duration,
            "repeats": args.repeats,
            "warmup_s": args.warmup,
            "connections": conns,
            "main_stack": {"web": args.web, "app": args.app},
            "bcrypt_cost": args.bcrypt_cost,
            "users": args.users,
            "wrk_threads": "1 for 1 connection, else 2",
        },
    }
    log(f"machine: {results['machine']}")
    results["login_ceiling"] = {
        "bcrypt_cost": args.bcrypt_cost,
        "checks_per_s_one_core": bcrypt_per_core(args.bcrypt_cost),
    }
    if args.micro_seconds > 0:
        results["micro"] = micro.run(args.micro_seconds)
        log(f"micro: {results['micro']}")
    run_main_stack(args, conns, results)
    shapes = parse_shapes(args.scaling)
    if shapes:
        run_scaling(args, results, shapes)
    if args.hooks_seconds > 0:
        results["hooks"] = hooks.run(args.hooks_seconds, log, args.hooks_rounds)
    cluster_conns = [int(c) for c in args.cluster_connections.split(",") if c.strip()]
    if cluster_conns:
        results["cluster"] = cluster.run(args, cluster_conns, log)
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    before = None
    if args.before and args.before.exists() and args.before.resolve() != args.out.resolve():
        before = json.loads(args.before.read_text())
    report.write(args.report, results, before, plots.render(results, args.report.parent))
    log(f"done in {results['elapsed_s']}s: {args.out}, {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
