"""Load sizes of the scenarios. `make reliability` (which writes docs/RELIABILITY.md, so sets
SHILLINGS_RELIABILITY_REPORT) runs the full ones, the figures the report shows; any other run
(`make test`) a smaller load through the same faults, steps and assertions, so that the whole
suite stays a few minutes long. A threshold that grows with a load is written as a share of
it, equal at full size to the figure it replaced."""

from __future__ import annotations

import os

from tests.reliability.report import REPORT_ENV

FULL = bool(os.environ.get(REPORT_ENV))


def size(full: int, quick: int) -> int:
    """``full`` when the report is written, else ``quick``."""
    return full if FULL else quick
