"""Tables of an A/B run: ``python -m bench.abtable OLD1 NEW1 OLD2 NEW2`` reads four results
files of ``python -m bench`` made alternately (old, new, old, new) and prints Markdown:
req/s of each run with the mean ratio new ÷ old, p50 at one connection, and CPU per
request (all tiers, and web / app / MariaDB) as means of the two runs."""

from __future__ import annotations

import json
import sys
from statistics import mean
from typing import Any

from bench.tables import table

TARGETS = ("account", "pay", "topup", "klein_const", "db_pay_ceiling")
TIERS = (("web", "shillings-web"), ("app", "shillings-app"), ("MariaDB", "mariadbd"))


def _rps(results: dict[str, Any], name: str) -> dict[int, float]:
    points = results["endpoints"].get(name) or results["baselines"].get(name) or []
    return {p["connections"]: p["rps"] for p in points}


def _p50(results: dict[str, Any], name: str) -> float | None:
    return next(
        (p["p50_ms"] for p in results["endpoints"].get(name, []) if p["connections"] == 1), None
    )


def _cpu(results: dict[str, Any], name: str, conns: int) -> dict[str, float]:
    return results.get("cpu_per_request_ms_by_connections", {}).get(name, {}).get(str(conns), {})


def render(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    runs = [r for pair in zip(old, new, strict=True) for r in pair]
    names = [f"{kind} {n}" for n in range(1, len(old) + 1) for kind in ("old", "new")]
    rows = []
    for name in TARGETS:
        for conns in sorted(_rps(runs[0], name)):
            values = [_rps(r, name).get(conns, 0.0) for r in runs]
            ratio = mean(_rps(r, name)[conns] for r in new) / mean(
                _rps(r, name)[conns] for r in old
            )
            rows.append([name, conns, *(f"{v:,.0f}" for v in values), f"{ratio:.2f}"])
    out = ["## Requests per second (each run) and mean ratio new ÷ old", ""]
    out += table(["target", "conns", *names, "new ÷ old"], rows)
    out += ["## p50 ms at one connection (each run)", ""]
    out += table(
        ["endpoint", *names],
        [[name, *(_p50(r, name) for r in runs)] for name in TARGETS[:3]],
    )
    rows = []
    for name in TARGETS[:3]:
        for conns in sorted(_rps(runs[0], name)):
            before = [_cpu(r, name, conns) for r in old]
            after = [_cpu(r, name, conns) for r in new]
            total = [mean(sum(c.values()) for c in side) for side in (before, after)]
            tiers = [
                " → ".join(f"{mean(c.get(key, 0.0) for c in side):.2f}" for side in (before, after))
                for _, key in TIERS
            ]
            rows.append(
                [
                    name,
                    conns,
                    f"{total[0]:.2f}",
                    f"{total[1]:.2f}",
                    f"{total[1] / total[0]:.2f}",
                    *tiers,
                ]
            )
    out += ["## CPU ms per request, all tiers summed (mean of the runs) and by tier", ""]
    out += table(
        ["endpoint", "conns", "old", "new", "new ÷ old", *(f"{t} old → new" for t, _ in TIERS)],
        rows,
    )
    return out


def main(argv: list[str]) -> int:
    files = [json.loads(open(path).read()) for path in argv]
    if len(files) < 2 or len(files) % 2:
        print("usage: python -m bench.abtable OLD1 NEW1 [OLD2 NEW2 ...]", file=sys.stderr)
        return 2
    print("\n".join(render(files[0::2], files[1::2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
