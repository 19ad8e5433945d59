"""Figures the cluster tests measure, printed at the end of the run (make test-cluster)
and written as JSON to SHILLINGS_CLUSTER_REPORT when that names a file, with the date,
commit and test outcomes of the run (docs/RELIABILITY.md renders its cluster section
from that file: tests/reliability/report.py)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

FIGURES: dict[str, dict[str, Any]] = {}
OUTCOMES: dict[str, str] = {}
RUN: dict[str, str] = {}
"""The run's commit (set when the session starts)."""


def add(scenario: str, **figures: Any) -> None:
    FIGURES.setdefault(scenario, {}).update(figures)


def write() -> str:
    """The figures as JSON (also written to SHILLINGS_CLUSTER_REPORT when set)."""
    text = json.dumps(FIGURES, indent=2, sort_keys=True)
    path = os.environ.get("SHILLINGS_CLUSTER_REPORT")
    if path and FIGURES:
        run = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": RUN.get("commit", ""),
            "tests": dict(sorted(OUTCOMES.items())),
            "figures": FIGURES,
        }
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps(run, indent=2, sort_keys=True) + "\n")
    return text
