"""The "Cluster (make test-cluster)" section of docs/RELIABILITY.md, rendered from the
figures the last `make test-cluster` run wrote to docs/cluster-figures.json.

`make test-cluster` refreshes that section in place (``python -m
tests.reliability.cluster_report``) so the 2.5-minute reliability run need not be repeated;
`make reliability` renders it too, from the same file, without starting a cluster."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.stack.helpers import ROOT

FIGURES_FILE = ROOT / "docs" / "cluster-figures.json"
REPORT_FILE = ROOT / "docs" / "RELIABILITY.md"
HEADING = "## Cluster (make test-cluster)"
LAST = ("cents_lost", "invariant_violations")


def section(path: Path = FIGURES_FILE) -> list[str]:
    """The section's lines (empty when no cluster run has written its figures)."""
    if not path.exists():
        return []
    run: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    tests: dict[str, str] = run.get("tests", {})
    passed = sum(1 for outcome in tests.values() if outcome == "passed")
    lines = [
        HEADING,
        "",
        "Three MariaDB Galera nodes, Redis with Sentinel, TLS between the tiers, on this one",
        "machine (issue 16); nodes are killed while clients pay. Figures of the last",
        f"`make test-cluster` run (kept in `{_shown(path)}`).",
        "",
        f"- Date: {run.get('date', 'unknown')}",
        f"- Commit: {run.get('commit') or 'unknown'}",
        f"- Tests: {passed} of {len(tests)} passed",
        "",
    ]
    for scenario, figures in sorted(run.get("figures", {}).items()):
        lines += [f"### Cluster: {scenario}", "", "| figure | value |", "|---|---:|"]
        ordered = [k for k in figures if k not in LAST] + [k for k in LAST if k in figures]
        for name in ordered:
            value = figures[name]
            shown = f"{value:,}" if isinstance(value, int) else str(value)
            lines.append(f"| {name.replace('_', ' ')} | {shown} |")
        lines.append("")
    return lines


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def splice(report: str, lines: list[str]) -> str:
    """``report`` with its cluster section replaced by ``lines`` (put before its test list)."""
    text = "\n".join(lines)
    start = report.find(HEADING + "\n")
    if start >= 0:
        end = report.find("\n## ", start + len(HEADING))
        return report[:start] + text + ("\n" + report[end + 1 :] if end >= 0 else "")
    at = report.find("## Tests\n")
    if at < 0:
        return report.rstrip("\n") + "\n\n" + text
    return report[:at] + text + "\n" + report[at:]


def main(argv: list[str]) -> int:
    report = Path(argv[0]) if argv else REPORT_FILE
    lines = section()
    if not lines or not report.exists():
        print(f"nothing to do: {FIGURES_FILE} or {report} is missing")
        return 0
    report.write_text(splice(report.read_text(encoding="utf-8"), lines), encoding="utf-8")
    print(f"cluster figures written to {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
