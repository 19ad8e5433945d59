"""The group-commit batch sizes the bench reports: the difference of two scrapes of the app
servers' ``shillings_app_batch_size`` histograms, by size range."""

from __future__ import annotations

from bench import batches

BEFORE = {"pay": {"le=1.0": 10, "le=2.0": 12, "le=4.0": 15, "le=+Inf": 15, "count": 15, "sum": 24}}
AFTER = {
    "pay": {"le=1.0": 20, "le=2.0": 25, "le=4.0": 31, "le=+Inf": 42, "count": 42, "sum": 160},
    "topup": {"le=1.0": 3, "le=2.0": 3, "le=4.0": 3, "le=+Inf": 3, "count": 3, "sum": 3},
}


def test_seen_is_the_difference_between_two_scrapes_by_size_range():
    seen = batches.seen(BEFORE, AFTER, "pay")
    assert seen == {
        "batches": 27,
        "requests": 136,
        "mean": 5.04,
        "buckets": {"1": 10, "2": 3, "3-4": 3, "≥5": 11},
    }
    assert batches.seen(BEFORE, AFTER, "topup")["buckets"] == {"1": 3}


def test_runs_of_a_point_merge_and_render_as_one_row():
    run = batches.seen(BEFORE, AFTER, "pay")
    merged = batches.merge([run, run])
    assert (merged["batches"], merged["requests"], merged["mean"]) == (54, 272, 5.04)
    assert merged["buckets"]["≥5"] == 22
    lines = batches.render({"batch_sizes": {"pay": {"64": merged}}})
    assert "| pay | 64 | 54 | 272 | 5.04 | 1: 20, 2: 6, 3-4: 6, ≥5: 22 |" in lines
    assert batches.render({}) == []
    cpu = {
        "batch_sizes": {"pay": {"64": merged}},
        "cpu_per_request_ms_by_connections": {"pay": {"64": {"web": 0.5, "app": 0.25}}},
        "ceiling_cpu_per_payment_ms": {"db_pay_ceiling": {"64": 1.9}},
    }
    assert "c=64: 0.75 vs 1.90" in batches.render(cpu)[-2]
