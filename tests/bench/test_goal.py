"""The goal table of bench/RESULTS.md (bench/goal.py) judges this run's means, as the Go
figures are means: a best run alone never meets a goal that the runs together miss."""

from __future__ import annotations

from typing import Any

from bench import goal


def _point(connections: int, rps_runs: list[float], p50_runs: list[float]) -> dict[str, Any]:
    return {
        "connections": connections,
        "rps": max(rps_runs),
        "rps_runs": rps_runs,
        "p50_ms": min(p50_runs),
        "p50_runs": p50_runs,
    }


def _row(lines: list[str], endpoint: str, conns: int) -> list[str]:
    for line in lines:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[:2] == [endpoint, str(conns)]:
            return cells
    raise AssertionError(f"no row for {endpoint} at {conns}: {lines}")


def test_one_connection_p50_is_the_mean_of_the_runs() -> None:
    # Go's top-up p50 is 2.0 ms: the best run (1.9) meets it, the mean (2.1) does not.
    results = {"endpoints": {"topup": [_point(1, [500.0, 460.0], [1.9, 2.3])]}}
    row = _row(goal.section(results), "topup", 1)
    assert row[5] == "2.1"
    assert row[6] == "p50 ≤ 2.0 ms: not met"


def test_throughput_is_the_mean_of_the_runs() -> None:
    # 1.5 x Go's 1,242 top-ups/s at 16 connections is 1,863: the best run meets it, the mean not.
    results = {"endpoints": {"topup": [_point(16, [1900.0, 1780.0], [8.0, 8.2])]}}
    row = _row(goal.section(results), "topup", 16)
    assert row[3] == "1,840"
    assert row[6] == "≥ 1.5 x Go: not met"


def test_results_without_p50_runs_use_the_recorded_p50() -> None:
    point = {"connections": 1, "rps": 400.0, "p50_ms": 2.4}
    row = _row(goal.section({"endpoints": {"pay": [point]}}), "pay", 1)
    assert (row[3], row[5], row[6]) == ("400", "2.4", "p50 ≤ 2.59 ms: met")
