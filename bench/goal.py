"""Issue 15's goal beside this run: the Go original's figures from the issue's table (its
own run, not re-measured: the Go stack is not available here), the targets derived from
them, and this run's figures for the same endpoints and connection counts."""

from __future__ import annotations

from statistics import mean
from typing import Any

from bench.tables import table

GO_RPS = {
    ("account", 1): 1_485,
    ("account", 16): 3_881,
    ("account", 64): 3_723,
    ("pay", 1): 364,
    ("pay", 16): 764,
    ("pay", 64): 767,
    ("topup", 1): 481,
    ("topup", 16): 1_242,
    ("topup", 64): 1_310,
}
"""Requests/s of the Go original in issue 15's table (mean of 4 runs of 10 s)."""

GO_P50_MS = {"account": 0.63, "pay": 2.59, "topup": 2.00}
"""The Go original's single-connection p50 in issue 15's table (the goal: at or below)."""

RPS_GOAL = 1.5
"""The goal: at least 1.5 x the Go figures at 16 and 64 connections."""

REFERENCE_KLEIN = {1: 3_284, 16: 11_745, 64: 13_255}
"""Bare Klein (baseline (b)) on the Intel Xeon machine of the bench run of 2026-11-30
10:24 UTC (bench/RESULTS.md at commit 84ce954), the kind of machine the issue's table came
from: this run's bare Klein divided by it says how this machine compares."""


def _mean(point: dict[str, Any], runs: str, single: str) -> float:
    """The mean of the runs' figure ``runs`` (the Go figures are means of 4 runs); results
    written before runs kept it have ``single``, the best run's, only."""
    return float(mean(point.get(runs) or [point[single]]))


def _points(results: dict[str, Any], group: str, name: str) -> dict[int, dict[str, Any]]:
    return {p["connections"]: p for p in results.get(group, {}).get(name, [])}


def section(results: dict[str, Any]) -> list[str]:
    """The goal table (empty when the run measured none of its endpoints)."""
    rows = []
    for (name, conns), go in GO_RPS.items():
        point = _points(results, "endpoints", name).get(conns)
        if point is None:
            continue
        ours = _mean(point, "rps_runs", "rps")
        p50 = round(_mean(point, "p50_runs", "p50_ms"), 2)
        goal = f"≥ {RPS_GOAL} x Go: {'met' if ours >= RPS_GOAL * go else 'not met'}"
        if conns == 1:
            met = "met" if p50 <= GO_P50_MS[name] else "not met"
            goal = f"p50 ≤ {GO_P50_MS[name]} ms: {met}"
        rows.append([name, conns, f"{go:,}", f"{ours:,.0f}", f"{ours / go:.2f}", p50, goal])
    if not rows:
        return []
    klein = _points(results, "baselines", "klein_const")
    speed = ", ".join(
        f"{klein[c]['rps']:,.0f} at {c} ({klein[c]['rps'] / ref:.2f} of {ref:,})"
        for c, ref in REFERENCE_KLEIN.items()
        if c in klein
    )
    return [
        "## Against issue 15's goal",
        "",
        "The Go original's figures are the issue's (its own run; the Go stack is not available",
        "to measure beside ours), so this compares across runs: ours are the **mean** of this",
        "run's runs of each point, req/s and p50 (the Go figures are means too), not the best.",
        "Goal: ≥ 1.5 x Go at 16 and 64 connections, p50 at or below Go's at 1 connection.",
        "",
        f"Machine check — bare Klein req/s here: {speed} on the Intel machine of the",
        "2026-11-30 10:24 run; near 1.00 means this machine is about as fast as that one.",
        "",
        *table(
            ["endpoint", "conns", "Go req/s", "ours req/s", "ours ÷ Go", "ours p50 ms", "goal"],
            rows,
        ),
    ]
