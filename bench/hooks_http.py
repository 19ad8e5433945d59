"""The outbox's cost on POST /v1/pay through the whole stack (nginx, web, app server,
MariaDB, the delivery workers fanning the events out): two identical stacks side by side,
one as built, one whose processes load bench/noevents/sitecustomize.py (no events written),
loaded alternately with wrk; pays/s and the stacks' CPU per pay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.hooks_outbox import ROUNDS, slowdown
from bench.seed import connect, seed
from bench.stackctl import ROOT, Stack
from bench.wrk import run_wrk

CONNECTIONS = 16


@dataclass
class NoEventsStack(Stack):
    """A stack whose payments write no events (the what-if)."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PYTHONPATH"] = str(ROOT / "bench" / "noevents")
        return env


def _count_events(stack: Stack) -> int:
    conn = connect(stack.mysql_socket)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM events")
            return int(cur.fetchone()[0])
    finally:
        conn.close()


def run(seconds: float, log: Callable[[str], None], rounds: int = ROUNDS) -> dict[str, Any]:
    """``rounds`` wrk runs of ``seconds`` on each stack, alternating."""
    stacks = {
        "with": Stack(web_procs=2, app_procs=1, bcrypt_cost=4),
        "without": NoEventsStack(web_procs=2, app_procs=1, bcrypt_cost=4),
    }
    log("outbox through the whole stack: two stacks, one without events")
    started: list[Stack] = []
    try:
        users = {}
        for name, stack in stacks.items():
            stack.start()
            started.append(stack)
            users[name] = seed(
                stack.mysql_socket,
                stack.jwt_secret_file,
                stack.var / "bench",
                users=200,
                history_rows=10,
                bcrypt_cost=4,
            ).users_file
        runs: dict[str, dict[str, list[float]]] = {
            name: {"rps": [], "cpu_ms": []} for name in stacks
        }
        for _ in range(rounds):
            for name, stack in stacks.items():
                before = sum(cpu for _, cpu in stack.cpu_seconds().values())
                point = run_wrk(
                    f"pay_{name}_events",
                    stack.url,
                    connections=CONNECTIONS,
                    seconds=seconds,
                    mode="pay",
                    users_file=users[name],
                )
                cpu = sum(cpu for _, cpu in stack.cpu_seconds().values()) - before
                cpu_ms = round(cpu * 1000 / max(point.requests, 1), 3)
                if point.errors:
                    raise RuntimeError(f"pay {name} events: {point.error_detail}")
                runs[name]["rps"].append(point.rps)
                runs[name]["cpu_ms"].append(cpu_ms)
                log(f"  POST /v1/pay, {name} events: {point.rps} req/s, {cpu_ms} CPU ms/pay")
        events = {name: _count_events(stack) for name, stack in stacks.items()}
        if events["without"] or not events["with"]:
            raise RuntimeError(f"the what-if stack is not what it should be: events {events}")
    finally:
        for stack in started:
            stack.stop()
    return {"connections": CONNECTIONS, **slowdown(runs)}
