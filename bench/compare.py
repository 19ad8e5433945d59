"""The sections of bench/RESULTS.md that compare this run with an earlier one (``--before``)."""

from __future__ import annotations

from typing import Any

from bench.tables import at, old_sql_points, table


def _summary_figures(results: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """Headline (req/s, ratio to its baseline) pairs, for comparing two runs."""
    base = results.get("baselines", {})
    eps = results.get("endpoints", {})
    out: dict[str, tuple[float, float]] = {}
    for name, label, points in (
        ("account", "÷ (b) klein_const", base.get("klein_const", [])),
        ("pay", "÷ (c'') pay SQL before the fix", old_sql_points(results)),
        ("pay", "÷ (c) the run's own app pay SQL", base.get("db_pay_ceiling", [])),
        ("topup", "÷ (b) klein_const", base.get("klein_const", [])),
    ):
        for p in eps.get(name, []):
            b = at(points, p["connections"])
            if b and b["rps"]:
                out[f"{name} c={p['connections']} {label}"] = (p["rps"], p["rps"] / b["rps"])
    return out


def render(results: dict[str, Any], before: dict[str, Any]) -> list[str]:
    """Headline figures, profile shares and web CPU per request: before against now."""
    out: list[str] = []
    prof, cpu = results.get("profile"), results.get("cpu_per_request_ms")
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
        out += table(
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
            out += table(
                ["category", "before", "after"],
                [
                    [c, f"{was_share.get(c, 0):.1f} %", f"{now_share.get(c, 0):.1f} %"]
                    for c in names[:10]
                ],
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
            out += table(["endpoint", "before ms", "after ms", "after ÷ before"], rows)
    return out
