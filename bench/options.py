"""The command line of ``python -m bench`` (bench/main.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench import hooks
from bench.endpoints import ENDPOINTS
from bench.stackctl import ROOT


def parse_shapes(text: str) -> list[tuple[int, int]]:
    shapes = []
    for part in text.split(","):
        part = part.strip()
        if part:
            web, _, app = part.partition("x")
            shapes.append((int(web), int(app)))
    return shapes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=float, default=2.0, help="seconds per run (default 2)")
    p.add_argument("--repeats", type=int, default=2, help="runs per point; the best is kept")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per target, 0: none")
    p.add_argument("--connections", default="1,16,64", help="connection counts")
    p.add_argument(
        "--endpoints",
        default=",".join(ENDPOINTS),
        help="endpoints of the main stack to measure (baselines are always measured)",
    )
    p.add_argument("--web", type=int, default=2, help="web processes of the main stack")
    p.add_argument("--app", type=int, default=1, help="app processes of the main stack")
    p.add_argument(
        "--scaling", default="1x1,2x1,4x1,1x2,2x2,4x2", help="WEBxAPP shapes for pay/account"
    )
    p.add_argument("--scaling-connections", type=int, default=64)
    p.add_argument(
        "--cluster-connections",
        default="16,64",
        help="connection counts of pay through the cluster shape (scripts/cluster.py), '': none",
    )
    p.add_argument(
        "--hooks-seconds",
        type=float,
        default=2.0,
        help="per webhook bench run (bench/hooks.py), 0: none",
    )
    p.add_argument(
        "--hooks-rounds",
        type=int,
        default=hooks.ROUNDS,
        help=f"webhook bench runs with and without events, each (default {hooks.ROUNDS})",
    )
    p.add_argument(
        "--setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a SHILLINGS_* setting of the stacks, e.g. SHILLINGS_BATCH_IN_FLIGHT=1 (repeatable)",
    )
    p.add_argument("--users", type=int, default=2000, help="seeded users")
    p.add_argument("--history-rows", type=int, default=100_000)
    p.add_argument("--bcrypt-cost", type=int, default=10, help="SHILLINGS_BCRYPT_COST of stacks")
    p.add_argument("--profile-seconds", type=int, default=6, help="0: no profile")
    p.add_argument(
        "--keep-profiles",
        action="store_true",
        help="keep py-spy's raw collapsed stacks beside --out (for flame graphs)",
    )
    p.add_argument("--micro-seconds", type=float, default=0.5, help="per micro-benchmark, 0: none")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    p.add_argument("--report", type=Path, default=ROOT / "bench" / "RESULTS.md")
    p.add_argument(
        "--before",
        type=Path,
        default=ROOT / "bench" / "results-before-fixes.json",
        help="an earlier results file to compare with in the report (if it exists)",
    )
    return p.parse_args(argv)
