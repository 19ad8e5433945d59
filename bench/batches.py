"""Group-commit batch sizes seen during a run: the app servers' ``shillings_app_batch_size``
histograms (docs/ARCHITECTURE.md, "Group commit") scraped before and after each pay and
top-up point, and the section of bench/RESULTS.md that shows them."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.stackctl import Stack

OPERATIONS = {"pay": "pay", "topup": "topup"}
"""Bench endpoint -> the batcher's ``operation`` label."""

Histogram = dict[str, dict[str, float]]
"""operation -> {"le=<bound>": cumulative count, "count": batches, "sum": requests}."""


def scrape(stack: Stack) -> Histogram:
    """The batch size histograms summed over the stack's app processes (app NN serves its
    metrics on the stack's metrics port base + NN)."""
    total: Histogram = {}
    for n in range(stack.app_procs):
        url = f"http://127.0.0.1:{stack.metrics_port_base + n}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            if family.name != "shillings_app_batch_size":
                continue
            for sample in family.samples:
                key = sample.name.rsplit("_", 1)[1]
                if key == "bucket":
                    key = "le=" + sample.labels["le"]
                per = total.setdefault(sample.labels["operation"], {})
                per[key] = per.get(key, 0.0) + sample.value
    return total


def seen(before: Histogram, after: Histogram, endpoint: str) -> dict[str, Any]:
    """Batches of ``endpoint``'s operation between two scrapes: how many, the requests in
    them, the mean size and how many batches had each range of sizes (``"5-8"``)."""
    operation = OPERATIONS[endpoint]
    old, new = before.get(operation, {}), after.get(operation, {})
    delta = {key: value - old.get(key, 0.0) for key, value in new.items()}
    batches, requests = int(delta.get("count", 0)), int(delta.get("sum", 0))
    buckets: dict[str, int] = {}
    below, smallest = 0, 1
    bounds = sorted(
        (int(float(key[3:])), key) for key in delta if key.startswith("le=") and key != "le=+Inf"
    )
    for bound, key in bounds:
        cumulative = int(delta[key])
        if cumulative > below:
            label = str(bound) if bound == smallest else f"{smallest}-{bound}"
            buckets[label] = cumulative - below
        below, smallest = cumulative, bound + 1
    if batches > below:
        buckets[f"≥{smallest}"] = batches - below
    return {
        "batches": batches,
        "requests": requests,
        "mean": round(requests / batches, 2) if batches else 0.0,
        "buckets": buckets,
    }


def merge(points: list[dict[str, Any]]) -> dict[str, Any]:
    """The batches of several runs of one point, taken together."""
    batches = sum(p["batches"] for p in points)
    requests = sum(p["requests"] for p in points)
    buckets: dict[str, int] = {}
    for p in points:
        for key, n in p["buckets"].items():
            buckets[key] = buckets.get(key, 0) + n
    return {
        "batches": batches,
        "requests": requests,
        "mean": round(requests / batches, 2) if batches else 0.0,
        "buckets": buckets,
    }


def render(results: dict[str, Any]) -> list[str]:
    """The RESULTS.md section "Group-commit batch sizes seen" (empty without figures)."""
    seen_by = results.get("batch_sizes")
    if not seen_by:
        return []
    out = [
        "## Group-commit batch sizes seen",
        "",
        "Pay and top-up requests applied per database transaction (group commit,",
        "docs/ARCHITECTURE.md), from the app servers' `shillings_app_batch_size` histograms",
        "over every run of the point; transactions by the number of requests in them.",
        "",
        "| endpoint | conns | transactions | requests | mean size | transactions by size |",
        "|---|---|---|---|---|---|",
    ]
    for endpoint, points in seen_by.items():
        for c, p in sorted(points.items(), key=lambda item: int(item[0])):
            sizes = ", ".join(f"{k}: {n:,}" for k, n in p["buckets"].items())
            out.append(
                f"| {endpoint} | {c} | {p['batches']:,} | {p['requests']:,} | {p['mean']} |"
                f" {sizes} |"
            )
    out.append("")
    pay_cpu = results.get("cpu_per_request_ms_by_connections", {}).get("pay", {})
    ceiling_cpu = results.get("ceiling_cpu_per_payment_ms", {}).get("db_pay_ceiling", {})
    both = sorted(set(pay_cpu) & set(ceiling_cpu), key=int)
    if both:
        out.append(
            "CPU milliseconds per payment, every tier: pay through the stack vs the ceiling (c)"
            " (MariaDB and its pymysql client) — "
            + ", ".join(
                f"c={c}: {sum(pay_cpu[c].values()):.2f} vs {ceiling_cpu[c]:.2f}" for c in both
            )
            + "."
        )
        out.append("")
    return out
