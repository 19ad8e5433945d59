"""`make bench`'s cluster shape at a tiny size: a private cluster (bench/cluster.py) starts,
is seeded, serves pay through nginx without errors, stops; its rows render beside the
single-node ones. Speeds are never asserted."""

from __future__ import annotations

import argparse

from bench import cluster


def test_tiny_cluster_bench_measures_pay_and_renders_its_rows() -> None:
    args = argparse.Namespace(bcrypt_cost=4, users=10, warmup=0, repeats=1, duration=1)
    lines: list[str] = []
    result = cluster.run(args, [2], lines.append)
    assert (result["galera_nodes"], result["app"], result["web"]) == (3, 2, 2)
    (point,) = result["pay"]
    assert point["connections"] == 2 and point["errors"] == 0, point
    assert point["requests"] > 0 and 0 < point["p50_ms"] <= point["p99_ms"] < 15_000, point
    assert any("up and seeded" in line for line in lines), lines
    single = [{**point, "rps": point["rps"] * 2}]
    text = "\n".join(cluster.render_pay(result, single))
    assert "#### POST /v1/pay through the cluster" in text and "÷ single node" in text
    assert "0.500" in text
