"""Render bench/RESULTS.md from a results dictionary (and an earlier run to compare with)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import cluster
from bench.dbceiling import OLD_SQL_CEILING

HERE = Path(__file__).resolve().parent
ANALYSIS = HERE / "analysis.md"

LABELS = {
    "account": "GET /v1/account (Redis-cached: every user's profile read once just before)",
    "pay": "POST /v1/pay (random users)",
    "topup": "POST /v1/topup",
    "transactions_10": "GET /v1/transactions?limit=10, user with 10 rows",
    "transactions_100k": "GET /v1/transactions?limit=10, user with 100,000 rows",
    "login": "POST /v1/login (bcrypt)",
    "hold": "POST /v1/holds, then its capture or void, alternately (half the requests each)",
    "refund": "POST /v1/refunds of 0.01 of a seeded payment (random users)",
}


def _at(points: list[dict[str, Any]], connections: int) -> dict[str, Any] | None:
    """The point measured at ``connections`` (else the nearest count)."""
    if not points:
        return None
    return min(points, key=lambda p: abs(p["connections"] - connections))


def _ratio(value: float, base: dict[str, Any] | None) -> str:
    if base is None or not base.get("rps"):
        return "-"
    return f"{value / base['rps']:.3f}"


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def _point_row(p: dict[str, Any]) -> list[Any]:
    errors = p["errors"]
    if p.get("error_detail"):
        errors = f"{errors} {p['error_detail']}"
    return [p["connections"], f"{p['rps']:,.0f}", p["p50_ms"], p["p99_ms"], errors]


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def _max_rss(rss: dict[str, int], prefix: str) -> int:
    return max((kib for name, kib in rss.items() if name.startswith(prefix)), default=0)


def _old_sql_points(results: dict[str, Any]) -> list[dict[str, Any]]:
    """(c''), the pay SQL before the fewer-round-trips fix. A run made before that fix has no
    such baseline: its (c) *was* that SQL (such runs carry the what-if db_pay_ceiling_4stmt)."""
    base = results.get("baselines", {})
    if OLD_SQL_CEILING in base:
        return list(base[OLD_SQL_CEILING])
    if "db_pay_ceiling_4stmt" in base:
        return list(base.get("db_pay_ceiling", []))
    return []


def _summary_figures(results: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Headline (req/s, ratio to its baseline) pairs, for comparing two runs."""
    base = results.get("baselines", {})
    eps = results.get("endpoints", {})
    out: dict[str, tuple[float, float]] = {}
    for name, label, points in (
        ("account", "÷ (b) klein_const", base.get("klein_const", [])),
        ("pay", "÷ (c'') pay SQL before the fix", _old_sql_points(results)),
        ("pay", "÷ (c) the run's own app pay SQL", base.get("db_pay_ceiling", [])),
        ("topup", "÷ (b) klein_const", base.get("klein_const", [])),
    ):
        for p in eps.get(name, []):
            b = _at(points, p["connections"])
            if b and b["rps"]:
                out[f"{name} c={p['connections']} {label}"] = (p["rps"], p["rps"] / b["rps"])
    return out


def _sql_fix(results: dict[str, Any]) -> list[str]:
    """(c) against (c'') and the pay endpoint over each, by connection count."""
    new, old = results.get("baselines", {}).get("db_pay_ceiling", []), _old_sql_points(results)
    if not new or not old or OLD_SQL_CEILING not in results.get("baselines", {}):
        return []
    pay = results.get("endpoints", {}).get("pay", [])
    rows = []
    for c_new in new:
        c = c_new["connections"]
        c_old, p = _at(old, c), _at(pay, c)
        rows.append(
            [
                c,
                f"{c_new['rps']:,.0f}",
                f"{c_old['rps']:,.0f}" if c_old else "-",
                _ratio(c_new["rps"], c_old),
                c_new["p50_ms"],
                c_old["p50_ms"] if c_old else "-",
                _ratio(p["rps"], c_new) if p else "-",
                _ratio(p["rps"], c_old) if p else "-",
            ]
        )
    return [
        "## The pay SQL fix on the raw database (same run)",
        "",
        "(c) is MoneyStore.pay's SQL now (4 statements + COMMIT), (c'') its SQL before the fix",
        "(7 statements + COMMIT), each run by N pymysql threads on the same MariaDB within",
        "seconds of each other; the last two columns divide this run's pay endpoint by each.",
        "",
        *_table(
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


def render(results: dict[str, Any], before: dict[str, Any] | None = None) -> str:
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
        "- (c) `db_pay_ceiling`: the SQL of one payment as MoneyStore.pay runs it without an",
        "  Idempotency-Key — one lookup (revoked token, receiver id, the key's earlier use by",
        "  a LEFT JOIN), both rows locked by one `IN (…) ORDER BY user_id FOR UPDATE`, one",
        "  UPDATE moving both balances, INSERT, COMMIT — by N pymysql threads (N = the",
        "  connection count) straight on MariaDB.",
        f"- (c'') `{OLD_SQL_CEILING}`: not a baseline but the before of the pay SQL fix — the",
        "  same payment in MoneyStore.pay's SQL before it (revocation check, receiver lookup,",
        "  two `SELECT … FOR UPDATE` in id order, two UPDATEs, INSERT, COMMIT), see",
        "  bench/dbceiling.py.",
        "",
    ]
    rows = []
    for name in ("nginx_static", "klein_const", "db_pay_ceiling", OLD_SQL_CEILING):
        for p in base.get(name, []):
            rows.append([name, *_point_row(p)])
    out += _table(["baseline", "conns", "req/s", "p50 ms", "p99 ms", "errors"], rows)

    out += ["## Endpoints", ""]
    out += [
        "Ratios: ÷(a) = req/s over nginx `return 200`, ÷(b) = over bare Klein, ÷(c) = over",
        "the raw pay transaction, each at the same connection count.",
        "",
    ]
    for name, points in results.get("endpoints", {}).items():
        out += [f"### {LABELS.get(name, name)}", ""]
        rows = []
        for p in points:
            c = p["connections"]
            row = [*_point_row(p)]
            http = name != "login"  # bcrypt-bound: see the bcrypt ceiling below instead
            row.append(_ratio(p["rps"], _at(base.get("nginx_static", []), c)) if http else "-")
            row.append(_ratio(p["rps"], _at(base.get("klein_const", []), c)) if http else "-")
            row.append(
                _ratio(p["rps"], _at(base.get("db_pay_ceiling", []), c))
                if name in ("pay", "topup", "hold", "refund")
                else "-"
            )
            rows.append(row)
        out += _table(
            ["conns", "req/s", "p50 ms", "p99 ms", "errors", "÷(a)", "÷(b)", "÷(c)"], rows
        )
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

    cpu = results.get("cpu_per_request_ms")
    if cpu:
        names = sorted({n for per in cpu.values() for n in per})
        out += [
            "## Where the CPU goes (per request, at the largest connection count)",
            "",
            "CPU milliseconds (user + system, from /proc) spent by each kind of process of the",
            "stack per request served; wrk's own CPU is not included.",
            "",
        ]
        out += _table(
            ["endpoint", *names, "total"],
            [
                [name, *(per.get(n, 0.0) for n in names), round(sum(per.values()), 3)]
                for name, per in cpu.items()
            ],
        )

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
                    _ratio(s["account"]["rps"], _at(base.get("klein_const", []), c)),
                    f"{s['pay']['rps']:,.0f}",
                    _ratio(s["pay"]["rps"], _at(base.get("db_pay_ceiling", []), c)),
                    s["account"]["errors"] + s["pay"]["errors"],
                    _mib(_max_rss(s["rss_kib"], "web")),
                    _mib(_max_rss(s["rss_kib"], "app")),
                ]
            )
        out += _table(
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
        out += _table(
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
            out += _table(
                ["#", "category", "share"],
                [
                    [i + 1, c, f"{n * 100 / total:.1f} %"]
                    for i, (c, n) in enumerate(p["categories"][:8])
                ],
            )
            out += [f"{role}: top functions by self time", ""]
            out += _table(
                ["function", "share"],
                [[f"`{f}`", f"{n * 100 / total:.1f} %"] for f, n in p["self_top"][:8]],
            )

    out += _sql_fix(results)
    if before is not None:
        now, then = _summary_figures(results), _summary_figures(before)
        keys = [k for k in now if k in then]
        if keys:
            out += [
                "## Before and after the fixes",
                "",
                f"Before: the run of {before['started_utc']} UTC (bench/results-before-fixes.json);"
                f" after: this run. Each as req/s and as a ratio to its baseline measured in the"
                " same run; the last column is after-ratio ÷ before-ratio. `pay ÷ (c'')` divides"
                " by the same SQL in both runs (the pay SQL before the fix on the raw database:"
                " the before run's (c), this run's (c'')), so it is the like-for-like figure."
                " `pay ÷ (c)` divides by the raw database running each run's own app SQL (old,"
                " then new), so it says how close pay gets to its SQL, not how much it gained.",
                "",
            ]
            rows = [
                [
                    k,
                    f"{then[k][0]:,.0f}",
                    f"{then[k][1]:.3f}",
                    f"{now[k][0]:,.0f}",
                    f"{now[k][1]:.3f}",
                    f"{now[k][1] / then[k][1]:.2f}x" if then[k][1] else "-",
                ]
                for k in keys
            ]
            out += _table(
                ["figure", "before req/s", "before ratio", "after req/s", "after ratio", "gain"],
                rows,
            )
    if before is not None and before.get("profile") and prof:
        for role in ("web_00", "app_00"):
            was, now_p = before["profile"].get(role), prof.get(role)
            if not was or not now_p:
                continue
            was_share = {c: n * 100 / max(1, was["samples"]) for c, n in was["categories"]}
            now_share = {c: n * 100 / max(1, now_p["samples"]) for c, n in now_p["categories"]}
            names = sorted(set(was_share) | set(now_share), key=lambda c: -was_share.get(c, 0))
            out += [f"## Profile shares of {role} before and after the fixes (pay load)", ""]
            out += _table(
                ["category", "before", "after"],
                [
                    [c, f"{was_share.get(c, 0):.1f} %", f"{now_share.get(c, 0):.1f} %"]
                    for c in names[:10]
                ],
            )
    micro = results.get("micro")
    if micro:
        out += [
            "## The two cheapest fixes, timed in isolation (same run)",
            "",
            "bench/micro.py: the code path before the fix and after it, microseconds per call.",
            "",
        ]
        out += _table(
            ["cost", "before µs/call", "after µs/call", "before ÷ after"],
            [[name, f["before_us"], f["after_us"], f"{f['ratio']}"] for name, f in micro.items()],
        )
    if before is not None and before.get("cpu_per_request_ms") and cpu:
        rows = []
        for name, per in cpu.items():
            was = before["cpu_per_request_ms"].get(name, {}).get("shillings-web")
            now_ms = per.get("shillings-web")
            if was and now_ms:
                rows.append([name, was, now_ms, f"{now_ms / was:.2f}"])
        if rows:
            out += [
                "## Web-process CPU per request, before and after the fixes",
                "",
                "CPU milliseconds of all web processes per request at the largest connection",
                "count (less sensitive to the other load on the machine than req/s).",
                "",
            ]
            out += _table(["endpoint", "before ms", "after ms", "after ÷ before"], rows)
    if ANALYSIS.exists():
        out += [ANALYSIS.read_text().rstrip(), ""]
    return "\n".join(out)


def write(path: Path, results: dict[str, Any], before: dict[str, Any] | None = None) -> None:
    path.write_text(render(results, before))
