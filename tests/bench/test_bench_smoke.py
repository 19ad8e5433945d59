"""`make bench` tooling at a tiny size: it runs end to end and writes sane figures (pay
through the cluster shape is run by tests/cluster/test_bench_cluster.py, in `make
test-cluster`).

Speeds are never asserted (the machine is shared); only that every point was measured,
without errors, and that the report holds every section.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.profile import summarise

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.stack


def test_profile_summary_charges_innermost_known_frame():
    raw = (
        "run (twisted/internet/base.py:1);decode (site-packages/jwt/api_jwt.py:9);"
        "loads (/usr/lib/python3.11/json/__init__.py:3) 3\n"
        "run (twisted/internet/base.py:1);decode (site-packages/jwt/api_jwt.py:9) 2\n"
        "run (twisted/internet/base.py:1);doPoll (twisted/internet/epollreactor.py:5) 5\n"
        "malformed line\n"
    )
    profile = summarise("web", raw)
    assert profile.samples == 10
    assert profile.categories["JSON encode/decode"] == 3
    assert profile.categories["JWT verification (PyJWT)"] == 2
    assert profile.categories["socket I/O and reactor loop"] == 5
    assert profile.self_time["decode (jwt/api_jwt.py)"] == 2


def test_tiny_bench_run_writes_results(tmp_path):
    out, report = tmp_path / "results.json", tmp_path / "RESULTS.md"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--duration=1",
            "--repeats=1",
            "--warmup=0",
            "--connections=2",
            "--scaling=1x1",
            "--scaling-connections=2",
            "--cluster-connections=",
            "--users=10",
            "--history-rows=50",
            "--bcrypt-cost=4",
            "--profile-seconds=1",
            "--micro-seconds=0.05",
            "--hooks-seconds=1",
            "--hooks-rounds=1",
            f"--out={out}",
            f"--report={report}",
            f"--before={tmp_path / 'none.json'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())

    def check(points, conns=(2,)):
        assert [p["connections"] for p in points] == list(conns)
        for p in points:
            assert p["requests"] > 0 and p["rps"] > 0, p
            assert 0 < p["p50_ms"] <= p["p99_ms"] < 15_000, p
            assert p["errors"] == 0, p

    for name in ("nginx_static", "klein_const", "db_pay_ceiling", "db_pay_ceiling_7stmt"):
        check(results["baselines"][name])
    assert set(results["endpoints"]) == {
        "account",
        "pay",
        "topup",
        "transactions_10",
        "transactions_100k",
        "login",
        "hold",
        "refund",
    }
    for points in results["endpoints"].values():
        check(points)
    (shape,) = results["scaling"]
    assert (shape["web"], shape["app"]) == (1, 1)
    check([shape["account"]], (2,))
    check([shape["pay"]], (2,))
    assert "cluster" not in results
    assert set(results["rss_kib"]) == {"web_00", "web_01", "app_00"}
    assert all(20_000 < kib < 2_000_000 for kib in results["rss_kib"].values())
    assert results["cpu_per_request_ms"]["pay"]["shillings-web"] > 0
    by_connections = results["cpu_per_request_ms_by_connections"]
    assert set(by_connections) == set(results["endpoints"])
    assert by_connections["account"]["2"]["shillings-web"] > 0
    assert results["ceiling_cpu_per_payment_ms"]["db_pay_ceiling"]["2"] > 0
    for name in ("pay", "topup"):
        seen = results["batch_sizes"][name]["2"]
        assert seen["requests"] >= seen["batches"] > 0
    assert results["profile"]["web_00"]["samples"] > 0
    assert results["profile"]["app_00"]["samples"] > 0
    for figures in results["micro"].values():
        assert figures["before_us"] > 0 and figures["after_us"] > 0
    hooks = results["hooks"]
    assert hooks["verification_failures"] == 0
    assert hooks["throughput"]["events"] > 0 and hooks["throughput"]["deliveries_per_s"] > 0
    assert 0 < hooks["latency"]["p50_ms"] <= hooks["latency"]["p99_ms"]
    assert hooks["outbox"]["rounds"] == 1
    for side in ("deployed", "insert_only"):
        assert hooks["outbox"][side]["with_events_rps"] > 0
        assert [len(runs["rps"]) for runs in hooks["outbox"][side]["runs"].values()] == [1, 1]
    assert [len(runs["rps"]) for runs in hooks["outbox_http"]["runs"].values()] == [1, 1]
    assert hooks["outbox_http"]["with_events_rps"] > 0
    text = report.read_text()
    assert "## Webhooks: the outbox's cost on payments" in text
    headings = ("## Baselines", "## Endpoints", "## Scaling", "## Memory", "## Profile")
    for heading in (
        *headings,
        "## The pay SQL fix on the raw database",
        "## Group-commit batch sizes seen",
    ):
        assert heading in text
    assert "## Machine and versions" in text and "÷(b)" in text
    assert "## Where the CPU goes (per request, by tier)" in text
    for png in ("rps.png", "p99.png", "cpu.png"):
        assert f"]({png})" in text
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")
    assert "through the cluster" not in text
