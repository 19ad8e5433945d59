"""Markdown helpers shared by the report and its comparison with an earlier run."""

from __future__ import annotations

from typing import Any

from bench.dbceiling import OLD_SQL_CEILING


def at(points: list[dict[str, Any]], connections: int) -> dict[str, Any] | None:
    """The point measured at ``connections`` (else the nearest count)."""
    if not points:
        return None
    return min(points, key=lambda p: abs(p["connections"] - connections))


def ratio(value: float, base: dict[str, Any] | None) -> str:
    if base is None or not base.get("rps"):
        return "-"
    return f"{value / base['rps']:.3f}"


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def old_sql_points(results: dict[str, Any]) -> list[dict[str, Any]]:
    """(c''), the pay SQL before the fewer-round-trips fix. A run made before that fix has no
    such baseline: its (c) *was* that SQL (such runs carry the what-if db_pay_ceiling_4stmt)."""
    base = results.get("baselines", {})
    if OLD_SQL_CEILING in base:
        return list(base[OLD_SQL_CEILING])
    if "db_pay_ceiling_4stmt" in base:
        return list(base.get("db_pay_ceiling", []))
    return []


def point_row(p: dict[str, Any]) -> list[Any]:
    errors = p["errors"]
    if p.get("error_detail"):
        errors = f"{errors} {p['error_detail']}"
    return [p["connections"], f"{p['rps']:,.0f}", p["p50_ms"], p["p99_ms"], errors]


def cpu_by_connections(results: dict[str, Any]) -> dict[str, dict[str, dict[str, float]]]:
    """CPU ms per request by endpoint, connection count and tier (a run from before the
    per-count figures: its largest count only)."""
    by_c: dict[str, dict[str, dict[str, float]]] | None = results.get(
        "cpu_per_request_ms_by_connections"
    )
    if by_c is not None:
        return by_c
    largest = str(max(results.get("params", {}).get("connections") or [0]))
    return {n: {largest: per} for n, per in results.get("cpu_per_request_ms", {}).items()}
