"""Render bench/RESULTS.md from a results dictionary (and an earlier run to compare with)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import batches, cluster, compare, goal, hooks
from bench.dbceiling import OLD_SQL_CEILING
from bench.endpoints import ENDPOINTS
from bench.tables import at, cpu_by_connections, old_sql_points, point_row, ratio, table

HERE = Path(__file__).resolve().parent
ANALYSIS = HERE / "analysis.md"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _max_rss(rss: dict[str, int], prefix: str) -> int:
    return max((kib for name, kib in rss.items() if name.startswith(prefix)), default=0)


def _sql_fix(results: dict[str, Any]) -> list[str]:
    """(c) against (c'') and the pay endpoint over each, by connection count."""
    new, old = results.get("baselines", {}).get("db_pay_ceiling", []), old_sql_points(results)
    if not new or not old or OLD_SQL_CEILING not in results.get("baselines", {}):
        return []
    pay = results.get("endpoints", {}).get("pay", [])
    rows = []
    for c_new in new:
        c = c_new["connections"]
        c_old, p = at(old, c), at(pay, c)
        rows.append(
            [
                c,
                f"{c_new['rps']:,.0f}",
                f"{c_old['rps']:,.0f}" if c_old else "-",
                ratio(c_new["rps"], c_old),
                c_new["p50_ms"],
                c_old["p50_ms"] if c_old else "-",
                ratio(p["rps"], c_new) if p else "-",
                ratio(p["rps"], c_old) if p else "-",
            ]
        )
    return [
        "## The pay SQL fix on the raw database (same run)",
        "",
        "(c) is the app's pay transaction now (6 statements + COMMIT in 2 round trips, since",
        "issue 15), (c'') the SQL before the fix (7 statements + COMMIT, one round trip each),",
        "each run by N pymysql threads on the same MariaDB within",
        "seconds of each other; the last two columns divide this run's pay endpoint by each.",
        "",
        *table(
            [
                "conns",
                "(c) req/s",
                "(c'') req/s",
                "(c) ÷ (c'')",
                "(c) p50 ms",
                "(c'') p50 ms",
                "pay ÷ (c)",
                "pay ÷ (c'')",
            ],
            rows,
        ),
    ]


def _one_connection(results: dict[str, Any]) -> list[str]:
    """Latency at one connection: what a lone client waits, whatever the load elsewhere."""
    cpu = results.get("cpu_per_request_ms_by_connections", {})
    rows = []
    for name, points in results.get("endpoints", {}).items():
        p = next((p for p in points if p["connections"] == 1), None)
        if p is not None:
            web = cpu.get(name, {}).get("1", {}).get("shillings-web", "-")
            rows.append([name, p["p50_ms"], p["p99_ms"], f"{p['rps']:,.0f}", web])
    if not rows:
        return []
    return [
        "## Latency at one connection",
        "",
        "One client, one request at a time (wrk -c1): p50 and p99 of each endpoint, and the",
        "web process's CPU milliseconds per request at that load.",
        "",
        *table(["endpoint", "p50 ms", "p99 ms", "req/s", "web CPU ms/req"], rows),
    ]


def _cpu_by_tier(results: dict[str, Any]) -> list[str]:
    """CPU ms per request of each kind of process, per endpoint and connection count."""
    by_c = cpu_by_connections(results)
    splits = [(name, c, per) for name, per_c in by_c.items() for c, per in per_c.items()]
    if not splits:
        return []
    names = sorted({n for _, _, per in splits for n in per})
    return [
        "## Where the CPU goes (per request, by tier)",
        "",
        "CPU milliseconds (user + system, from /proc) spent by each kind of process of the",
        "stack per request served, supervisord included; wrk's own CPU is not included.",
        "",
        *table(
            ["endpoint", "conns", *names, "total"],
            [
                [name, c, *(per.get(n, 0.0) for n in names), round(sum(per.values()), 3)]
                for name, c, per in splits
            ],
        ),
    ]


def render(
    results: dict[str, Any],
    before: dict[str, Any] | None = None,
    figures: list[tuple[str, str]] | None = None,
) -> str:
    """The report; ``figures``: (PNG file beside it, caption) pairs to show."""
    figures = figures or []
    m, v, params = results["machine"], results["versions"], results["params"]
    base = results.get("baselines", {})
    out = [
        "# Shillings benchmark results",
        "",
        "Written by `make bench` (bench/run.sh → `python -m bench`); do not edit the figures by",
        "hand, run it again. The machine is shared with other work, so absolute figures are",
        "noisy: read the **ratios** to the baselines measured in the same run.",
        "",
        f"Run started {results['started_utc']} UTC, took {results.get('elapsed_s', '?')} s.",
        "",
        "## Machine and versions",
        "",
        f"- {m['nproc']} CPUs: {m['cpu']}; {m['ram_gib']} GiB RAM; Linux {m['kernel']};"
        f" load average at start {' '.join(m['loadavg_at_start'])}",
        "- " + ", ".join(f"{k} {val}" for k, val in v.items()),
        f"- Load generator: wrk + bench/lua/shillings.lua on the same machine"
        f" ({params['wrk_threads']} threads); each point is the best of"
        f" {params.get('repeats', 1)} run(s) of {params['duration_s']} s (every run's req/s is"
        f" in results.json), after {params['warmup_s']} s warm-up; connections"
        f" {params['connections']}. Baselines and endpoints are measured interleaved, one"
        " connection count at a time, so each ratio compares figures taken seconds apart.",
        f"- Main stack: {params['main_stack']['web']} web x {params['main_stack']['app']} app"
        f" processes (`make start`), nginx 1 worker, MariaDB and Redis on unix sockets,"
        f" SHILLINGS_BCRYPT_COST={params['bcrypt_cost']}; {params['users']} users seeded in SQL,"
        " each request from a random user with its own JWT.",
        "",
        "## Baselines (same run)",
        "",
        "- (a) `nginx_static`: nginx answering `return 200` itself — the HTTP ceiling here.",
        "- (b) `klein_const`: bare Klein processes (as many as web processes) answering a",
        "  constant, behind the same kind of nginx (keepalive over unix sockets).",
        "- (c) `db_pay_ceiling`: one payment per transaction, without an Idempotency-Key, by",
        "  the app server's own transaction function (`handlers/pay.py` `pay_batch_txn` with a",
        "  batch of one), in its two round trips since issue 15 (multi-statement queries, no",
        "  BEGIN): the receiver's id by email, both rows locked by one `IN (…) ORDER BY user_id",
        "  FOR UPDATE` (with their active holds summed) and one lookup (revoked token, receiver",
        "  id, the key's earlier use); then one UPDATE moving both balances, the ledger INSERT,",
        "  the INSERT of its two events (the outbox, since issue 14) and COMMIT — by N pymysql",
        "  threads (N = the connection count) straight on MariaDB.",
        f"- (c'') `{OLD_SQL_CEILING}`: not a baseline but the before of the pay SQL fix — the",
        "  same payment in MoneyStore.pay's SQL before it (revocation check, receiver lookup,",
        "  two `SELECT … FOR UPDATE` in id order, two UPDATEs, INSERT, COMMIT), see",
        "  bench/dbceiling.py.",
        "",
    ]
    rows = []
    for name in ("nginx_static", "klein_const", "db_pay_ceiling", OLD_SQL_CEILING):
        for p in base.get(name, []):
            rows.append([name, *point_row(p)])
    out += table(["baseline", "conns", "req/s", "p50 ms", "p99 ms", "errors"], rows)

    out += goal.section(results)
    out += ["## Endpoints", ""]
    out += [
        "Ratios: ÷(a) = req/s over nginx `return 200`, ÷(b) = over bare Klein, ÷(c) = over",
        "the raw pay transaction, each at the same connection count.",
        "",
    ]
    for name, points in results.get("endpoints", {}).items():
        endpoint = ENDPOINTS.get(name)
        http = endpoint is None or endpoint.http  # logins: see the bcrypt ceiling below
        ceilings = endpoint.ceilings if endpoint is not None else ()
        out += [f"### {endpoint.label if endpoint else name}", ""]
        rows = []
        for p in points:
            c = p["connections"]
            row = [*point_row(p)]
            row.append(ratio(p["rps"], at(base.get("nginx_static", []), c)) if http else "-")
            row.append(ratio(p["rps"], at(base.get("klein_const", []), c)) if http else "-")
            row.append(
                ratio(p["rps"], at(base.get("db_pay_ceiling", []), c))
                if "db_pay_ceiling" in ceilings
                else "-"
            )
            rows.append(row)
        out += table(["conns", "req/s", "p50 ms", "p99 ms", "errors", "÷(a)", "÷(b)", "÷(c)"], rows)
        if name == "pay" and results.get("cluster"):
            out += cluster.render_pay(results["cluster"], points)
    eps = results.get("endpoints", {})
    if eps.get("transactions_10") and eps.get("transactions_100k"):
        pairs = zip(eps["transactions_10"], eps["transactions_100k"], strict=False)
        text = ", ".join(
            f"c={a['connections']}: {b['rps'] / a['rps']:.2f}" for a, b in pairs if a["rps"]
        )
        out += [
            f"History size: req/s with 100,000 rows ÷ req/s with 10 rows — {text}"
            " (≈1 means the cost does not grow with history).",
            "",
        ]
    login = results.get("login_ceiling")
    if login and eps.get("login"):
        best = max(eps["login"], key=lambda p: p["rps"])
        per_core = best["rps"] / m["nproc"]
        out += [
            f"Login at bcrypt cost {login['bcrypt_cost']}: best {best['rps']:.1f} logins/s ="
            f" {per_core:.1f} logins/s per core; one core does"
            f" {login['checks_per_s_one_core']} bcrypt checks/s at this cost, so the API"
            f" reaches {per_core / login['checks_per_s_one_core']:.2f} of the bcrypt ceiling.",
            "",
        ]

    out += batches.render(results)
    out += _one_connection(results)
    out += _cpu_by_tier(results)
    out += [f"![{caption}]({name})\n" for name, caption in figures]

    scaling = results.get("scaling", [])
    if scaling:
        out += ["## Scaling (web x app processes)", ""]
        rows = []
        for s in scaling:
            c = s["connections"]
            rows.append(
                [
                    s["web"],
                    s["app"],
                    c,
                    f"{s['account']['rps']:,.0f}",
                    ratio(s["account"]["rps"], at(base.get("klein_const", []), c)),
                    f"{s['pay']['rps']:,.0f}",
                    ratio(s["pay"]["rps"], at(base.get("db_pay_ceiling", []), c)),
                    s["account"]["errors"] + s["pay"]["errors"],
                    _mib(_max_rss(s["rss_kib"], "web")),
                    _mib(_max_rss(s["rss_kib"], "app")),
                ]
            )
        out += table(
            [
                "web",
                "app",
                "conns",
                "account req/s",
                "÷(b)",
                "pay req/s",
                "÷(c)",
                "errors",
                "max web RSS MiB",
                "max app RSS MiB",
            ],
            rows,
        )

    if results.get("rss_kib"):
        out += ["## Memory: peak RSS (VmHWM) of the main stack's processes after its runs", ""]
        out += table(
            ["process", "peak RSS MiB"],
            [[n, _mib(k)] for n, k in results["rss_kib"].items()],
        )

    prof = results.get("profile")
    if prof:
        out += [
            "## Profile under the pay load",
            "",
            f"py-spy (`record --format raw --nonblocking`, idle excluded), {prof['seconds']} s"
            f" while pay runs at {prof['connections']} connections. Each sample is charged to"
            " the innermost frame that belongs to a known category (bench/profile.py).",
            "",
        ]
        for role in ("web_00", "app_00"):
            p = prof.get(role)
            if not p:
                continue
            total = max(1, p["samples"])
            out += [f"### {role}: top categories ({p['samples']} samples)", ""]
            out += table(
                ["#", "category", "share"],
                [
                    [i + 1, c, f"{n * 100 / total:.1f} %"]
                    for i, (c, n) in enumerate(p["categories"][:8])
                ],
            )
            out += [f"{role}: top functions by self time", ""]
            out += table(
                ["function", "share"],
                [[f"`{f}`", f"{n * 100 / total:.1f} %"] for f, n in p["self_top"][:8]],
            )

    out += _sql_fix(results)
    if before is not None:
        out += compare.render(results, before)
    micro = results.get("micro")
    if micro:
        out += [
            "## The two cheapest fixes, timed in isolation (same run)",
            "",
            "bench/micro.py: the code path before the fix and after it, microseconds per call.",
            "",
        ]
        out += table(
            ["cost", "before µs/call", "after µs/call", "before ÷ after"],
            [[name, f["before_us"], f["after_us"], f"{f['ratio']}"] for name, f in micro.items()],
        )
    if results.get("hooks"):
        out += hooks.section(results["hooks"])
    if ANALYSIS.exists():
        out += [ANALYSIS.read_text().rstrip(), ""]
    return "\n".join(out)


def write(
    path: Path,
    results: dict[str, Any],
    before: dict[str, Any] | None = None,
    figures: list[tuple[str, str]] | None = None,
) -> None:
    path.write_text(render(results, before, figures))
