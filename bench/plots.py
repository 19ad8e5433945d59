"""The figures of bench/RESULTS.md, drawn by the bench itself (matplotlib, no display).

``render`` writes PNG files beside the report and returns ``(file name, caption)`` pairs
for the report to link: req/s and p99 against connections, one panel per endpoint with
the baselines it is compared with; CPU per request by tier for each endpoint.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.endpoints import ENDPOINTS
from bench.tables import cpu_by_connections

BASELINE_STYLE = {
    "klein_const": ("(b) bare Klein", "tab:gray", "--"),
    "db_pay_ceiling": ("(c) raw DB pay", "tab:brown", ":"),
}
TIER_COLOURS = {
    "nginx": "tab:green",
    "shillings-web": "tab:blue",
    "shillings-app": "tab:orange",
    "mariadbd": "tab:red",
    "redis-server": "tab:purple",
    "supervisord": "tab:gray",
}


def _series(points: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    ordered = sorted(points, key=lambda p: p["connections"])
    return [p["connections"] for p in ordered], [p[key] for p in ordered]


def _grid(count: int) -> tuple[Any, list[Any]]:
    cols = min(3, count)
    rows = math.ceil(count / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    return fig, flat[:count]


def _against_connections(results: dict[str, Any], key: str, ylabel: str, out: Path) -> None:
    endpoints = results.get("endpoints", {})
    baselines = results.get("baselines", {})
    fig, axes = _grid(len(endpoints))
    for ax, (name, points) in zip(axes, endpoints.items(), strict=True):
        endpoint = ENDPOINTS.get(name)
        x, y = _series(points, key)
        ax.plot(x, y, "o-", color="tab:blue", label=name)
        shown = ("klein_const",) if endpoint is None or endpoint.http else ()
        for base in (*shown, *(endpoint.ceilings if endpoint else ())):
            if baselines.get(base) and base in BASELINE_STYLE:
                label, colour, dash = BASELINE_STYLE[base]
                bx, by = _series(baselines[base], key)
                ax.plot(bx, by, marker=".", linestyle=dash, color=colour, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(c) for c in x])
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("connections")
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def _cpu_by_tier(cpu: dict[str, dict[str, dict[str, float]]], out: Path) -> None:
    """Stacked bars: CPU ms per request of each tier, per endpoint and connection count."""
    bars = [(f"{name} c={c}", split) for name, by_c in cpu.items() for c, split in by_c.items()]
    order = list(TIER_COLOURS)
    tiers = sorted(
        {t for _, split in bars for t in split},
        key=lambda t: (order.index(t) if t in order else len(order), t),
    )
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(bars) + 1.4))
    labels = [label for label, _ in bars][::-1]
    left = [0.0] * len(bars)
    for tier in tiers:
        widths = [split.get(tier, 0.0) for _, split in bars][::-1]
        ax.barh(labels, widths, left=left, color=TIER_COLOURS.get(tier), label=tier)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.set_xlabel("CPU ms per request")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def render(results: dict[str, Any], directory: Path) -> list[tuple[str, str]]:
    """Write the PNGs into ``directory``; return their names and captions."""
    figures: list[tuple[str, str]] = []
    if results.get("endpoints"):
        _against_connections(results, "rps", "requests/s", directory / "rps.png")
        figures.append(("rps.png", "requests/s against connections, beside the baselines"))
        _against_connections(results, "p99_ms", "p99 ms", directory / "p99.png")
        figures.append(("p99.png", "p99 latency against connections, beside the baselines"))
    # Logins (bcrypt, tens of ms) would flatten every other bar: they are in the table only.
    cpu = {
        name: by_c
        for name, by_c in cpu_by_connections(results).items()
        if by_c and (name not in ENDPOINTS or ENDPOINTS[name].http)
    }
    if cpu:
        _cpu_by_tier(cpu, directory / "cpu.png")
        caption = "CPU milliseconds per request by tier (wrk excluded; logins in the table)"
        figures.append(("cpu.png", caption))
    return figures
