"""Figures the cluster tests measure, printed at the end of the run (make test-cluster)
and written as JSON to SHILLINGS_CLUSTER_REPORT when that names a file."""

from __future__ import annotations

import json
import os
from typing import Any

FIGURES: dict[str, dict[str, Any]] = {}


def add(scenario: str, **figures: Any) -> None:
    FIGURES.setdefault(scenario, {}).update(figures)


def write() -> str:
    text = json.dumps(FIGURES, indent=2, sort_keys=True)
    path = os.environ.get("SHILLINGS_CLUSTER_REPORT")
    if path and FIGURES:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return text
