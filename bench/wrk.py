"""Run wrk with bench/lua/shillings.lua and read the figures its ``done()`` prints."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua" / "shillings.lua"


class WrkError(RuntimeError):
    """wrk failed or printed no figures."""


@dataclass(frozen=True)
class Point:
    """One measured point: a load of ``connections`` for ``seconds`` on one target."""

    name: str
    connections: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise WrkError("wrk is not installed: bench/run.sh installs it (apt package wrk)")
    return found


def run_wrk(
    name: str,
    url: str,
    *,
    connections: int,
    seconds: float,
    mode: str = "get",
    users_file: Path | None = None,
    password: str = "",
    limit: int = 20,
    timeout_s: int = 10,
) -> Point:
    """Load ``url`` with ``connections`` connections for ``seconds`` (at least 1 s)."""
    threads = 1 if connections < 2 else 2
    cmd = [
        wrk_binary(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(LUA),
        url,
        "--",
        mode,
        str(users_file or ""),
        password,
        str(limit),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=seconds + timeout_s + 30,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    line = next(
        (x for x in proc.stdout.splitlines() if x.startswith("BENCH_JSON ")),
        None,
    )
    if proc.returncode != 0 or line is None:
        raise WrkError(f"wrk {name} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    duration = data["duration_us"] / 1e6
    errors = data["errors"]
    latency = data["latency_us"]
    return Point(
        name=name,
        connections=connections,
        requests=int(data["requests"]),
        seconds=round(duration, 3),
        rps=round(data["requests"] / duration, 1) if duration > 0 else 0.0,
        p50_ms=round(latency["p50"] / 1000, 2),
        p99_ms=round(latency["p99"] / 1000, 2),
        errors=int(sum(errors.values())),
        error_detail={k: int(v) for k, v in errors.items() if v},
    )


def best_of(
    repeats: int, measure: Callable[[], tuple[Point, dict[str, float] | None]]
) -> tuple[dict[str, Any], dict[str, float] | None]:
    """Run ``measure`` ``repeats`` times; keep the fastest run (other load on the machine
    only ever slows a run down) and the req/s and p50 of every run."""
    runs = [measure() for _ in range(max(1, repeats))]
    point, cpu = max(runs, key=lambda run: run[0].rps)
    figures = point.as_dict()
    figures["rps_runs"] = [run[0].rps for run in runs]
    figures["p50_runs"] = [run[0].p50_ms for run in runs]
    return figures, cpu
