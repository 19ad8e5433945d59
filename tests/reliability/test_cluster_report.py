"""The cluster section of docs/RELIABILITY.md, rendered from a `make test-cluster` run's
figures file and spliced into an existing report (tests/reliability/cluster_report.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability import cluster_report
from tests.reliability.report import Collector

RUN = {
    "date": "2026-11-30 06:40 UTC",
    "commit": "abc1234",
    "tests": {"test_a": "passed", "test_b": "failed"},
    "figures": {
        "storm": {"cents_lost": 0, "payments_made": 1234, "seconds": 41.5},
        "redis failover": {"kill_to_all_web_healthy_seconds": 3.2},
    },
}


def _figures_file(tmp_path: Path) -> Path:
    path = tmp_path / "figures.json"
    path.write_text(json.dumps(RUN))
    return path


def test_section_shows_the_runs_figures_with_cents_lost_last(tmp_path: Path) -> None:
    path = _figures_file(tmp_path)
    text = "\n".join(cluster_report.section(path))
    assert text.startswith(cluster_report.HEADING)
    assert "- Date: 2026-11-30 06:40 UTC" in text and "- Commit: abc1234" in text
    assert "- Tests: 1 of 2 passed" in text
    assert "| payments made | 1,234 |" in text and "| seconds | 41.5 |" in text
    assert text.index("| seconds |") < text.index("| cents lost | 0 |")
    assert "### Cluster: redis failover" in text
    assert "| kill to all web healthy seconds | 3.2 |" in text


def test_no_figures_file_no_section(tmp_path: Path) -> None:
    assert cluster_report.section(tmp_path / "missing.json") == []


def test_splice_replaces_the_section_or_puts_it_before_the_tests(tmp_path: Path) -> None:
    lines = cluster_report.section(_figures_file(tmp_path))
    report = "# R\n\n## Scenarios\n\nx\n\n## Tests\n\n| t |\n"
    once = cluster_report.splice(report, lines)
    assert once.index("## Scenarios") < once.index(cluster_report.HEADING) < once.index("## Tests")
    assert once.endswith("## Tests\n\n| t |\n")
    newer = [line.replace("abc1234", "def5678") for line in lines]
    twice = cluster_report.splice(once, newer)
    assert twice.count(cluster_report.HEADING) == 1
    assert "def5678" in twice and "abc1234" not in twice
    assert twice == once.replace("abc1234", "def5678")


def test_full_report_renders_the_cluster_section_from_the_committed_file() -> None:
    text = Collector().render()
    if cluster_report.FIGURES_FILE.exists():
        assert cluster_report.HEADING in text
        assert text.index(cluster_report.HEADING) < text.index("## Tests")
    else:
        assert cluster_report.HEADING not in text
