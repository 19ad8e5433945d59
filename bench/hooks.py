"""Webhooks in `make bench` (also ``python -m bench.hooks``): what the event outbox costs a
payment, and how fast the delivery workers deliver.

1. Outbox cost: the pay ceiling (bench/dbceiling.py: the app's own ``pay_batch_txn``, one
   payment per transaction, on N connections straight to MariaDB) with its two event rows,
   and the same transaction with the events insert left out, run alternately on one stack
   whose delivery workers fan the events out meanwhile (no endpoints yet); the slowdown is
   the ratio of the medians.
2. Throughput: a backlog of events made while the workers are stopped, then the workers
   started: deliveries per second until the receiver (bench/hooks_receiver.py, its own
   process, verifying every signature) has every one, and worker CPU per delivery.
3. Latency: payments at a steady, moderate rate; event committed → receiver got it, p50/p99
   (the workers look for new events every ``SHILLINGS_HOOKS_POLL`` s when idle).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import dbceiling, hooks_http
from bench.hooks_outbox import ROUNDS, THREADS, outbox, outbox_cost
from bench.seed import BALANCE_CENTS, connect
from bench.stackctl import ROOT, Stack, free_port
from shillings_app.handlers.pay import Payment, pay_batch_txn
from shillings_app.storage.database import Attempt, Txn
from shillings_app.webhooks.secrets import load_key, new_secret, seal

USERS = 20
LATENCY_RATE = 50
"""Payments per second of the latency run (two events, two deliveries each)."""


@dataclass
class HooksStack(Stack):
    """A bench stack whose workers may deliver to the receiver on 127.0.0.1."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env.update(SHILLINGS_WEBHOOK_ALLOW="127.0.0.0/8", HOOKS_PROCS="2")
        return env

    def ctl(self, *args: str) -> None:
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "supervisorctl"),
                "-c",
                str(self.var / "etc" / "supervisord.conf"),
                *args,
            ],
            env=self.env(),
            capture_output=True,
            check=True,
            timeout=120,
        )

    def hooks_cpu(self) -> float:
        """CPU seconds so far of the delivery workers."""
        from shillings_stack.config import StackConfig
        from shillings_stack.supervisor import process_infos

        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for info in process_infos(StackConfig.from_env(self.env())):
            if info["group"] == "hooks" and int(info.get("pid") or 0) > 0:
                fields = Path(f"/proc/{info['pid']}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        return total


def seed(stack: Stack, work: Path) -> tuple[list[tuple[int, str]], Path]:
    """``USERS`` users with large balances; the users file dbceiling reads."""
    conn = connect(stack.mysql_socket)
    users = []
    with conn.cursor() as cur:
        for n in range(USERS):
            email = f"hooks{n}@bench.example"
            cur.execute(
                "INSERT INTO users (first_name, last_name, email, phone, balance, created_at,"
                " updated_at) VALUES ('Hook', 'Bench', %s, '+15550000002', %s,"
                " UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                (email, BALANCE_CENTS),
            )
            users.append((int(cur.lastrowid), email))
    conn.close()
    users_file = work / "hooks-users.tsv"
    users_file.write_text("".join(f"{uid}\t{email}\t-\n" for uid, email in users))
    return users, users_file


def add_webhooks(stack: Stack, users: list[tuple[int, str]], port: int, work: Path) -> Path:
    """One endpoint per user at the receiver, stored as the API stores them; the secrets
    file the receiver reads."""
    key = load_key(str(stack.var / "webhook.key"))
    secrets = {}
    conn = connect(stack.mysql_socket)
    with conn.cursor() as cur:
        for user_id, _ in users:
            webhook_id, secret = str(uuid.uuid4()), new_secret()
            cur.execute(
                "INSERT INTO webhooks (webhook_id, user_id, url, secret_sealed, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
                (
                    webhook_id,
                    user_id,
                    f"http://127.0.0.1:{port}/hook/{webhook_id}",
                    seal(secret, key, webhook_id),
                ),
            )
            secrets[webhook_id] = secret
    conn.close()
    path = work / "hooks-secrets.json"
    path.write_text(json.dumps(secrets))
    return path


def arrivals(path: Path) -> dict[str, tuple[float, str]]:
    """First arrival time and created_at of each webhook-id the receiver logged."""
    first: dict[str, tuple[float, str]] = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] != "BAD":
            first.setdefault(parts[0], (float(parts[1]), parts[2]))
    return first


def event_ids_after(stack: Stack, last_id: int) -> set[str]:
    conn = connect(stack.mysql_socket)
    with conn.cursor() as cur:
        cur.execute("SELECT event_id FROM events WHERE id > %s", (last_id,))
        found = {row[0] for row in cur.fetchall()}
    conn.close()
    return found


def last_event_id(stack: Stack) -> int:
    conn = connect(stack.mysql_socket)
    with conn.cursor() as cur:
        cur.execute("SELECT COALESCE(MAX(id), 0) FROM events")
        (found,) = cur.fetchone()
    conn.close()
    return int(found)


def wait_delivered(
    path: Path, expected: set[str], timeout: float = 300.0
) -> dict[str, tuple[float, str]]:
    deadline = time.monotonic() + timeout
    while True:
        got = arrivals(path)
        if expected <= set(got):
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"{len(expected - set(got))} of {len(expected)} events not delivered"
            )
        time.sleep(0.1)


def paced_payments(stack: Stack, users: list[tuple[int, str]], rate: int, seconds: float) -> int:
    """Payments one by one at ``rate`` per second for ``seconds``; how many."""
    conn = connect(stack.mysql_socket, multi_statements=True)
    conn.autocommit(False)
    made = 0
    began = time.monotonic()
    with conn.cursor() as cur:
        while (elapsed := time.monotonic() - began) < seconds:
            sender, receiver = users[made % len(users)], users[(made + 1) % len(users)]
            payment = Payment(sender[0], uuid.uuid4().hex, receiver[1], 1, None)
            pay_batch_txn(Txn(cur, Attempt("pay", None)), [payment])  # COMMIT included
            made += 1
            time.sleep(max(0.0, made / rate - elapsed))
    conn.close()
    return made


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)


def _latency(got: dict[str, tuple[float, str]], ids: set[str]) -> list[float]:
    out = []
    for event_id in ids:
        at, created = got[event_id]
        made = datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        out.append(at - made.timestamp())
    return out


def run(seconds: float, log: Callable[[str], None], rounds: int = ROUNDS) -> dict[str, Any]:
    """Every measurement: the outbox's cost on payments through the whole stack
    (bench/hooks_http.py), then the rest on a stack of their own; the outbox's costs from
    ``rounds`` runs with and without events each."""
    http = hooks_http.run(seconds, log, rounds)
    results = _one_stack(seconds, log, rounds)
    results["outbox_http"] = http
    return results


def _one_stack(seconds: float, log: Callable[[str], None], rounds: int) -> dict[str, Any]:
    """The pay ceiling, throughput and latency on one stack (1 web, 1 app, 2 workers)."""
    stack = HooksStack(web_procs=1, app_procs=1, bcrypt_cost=4)
    log(f"webhooks: stack with 2 delivery workers in {stack.var}")
    stack.start()
    receiver: subprocess.Popen[bytes] | None = None
    try:
        work = stack.var / "bench"
        work.mkdir(exist_ok=True)
        users, users_file = seed(stack, work)
        results: dict[str, Any] = {
            "outbox": outbox_cost(stack, stack.ctl, users_file, seconds, log, rounds)
        }
        port = free_port()
        secrets = add_webhooks(stack, users, port, work)
        out = work / "arrivals.txt"
        out.touch()
        receiver = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.hooks_receiver",
                "--port",
                str(port),
                "--secrets",
                str(secrets),
                "--out",
                str(out),
            ],
            cwd=ROOT,
        )
        stack.ctl("stop", "hooks:*")
        start = last_event_id(stack)
        with outbox(True):
            dbceiling.run_pay_ceiling(
                stack.mysql_socket, users_file, threads=THREADS, seconds=seconds
            )
        backlog = event_ids_after(stack, start)
        began = time.time()
        stack.ctl("start", "hooks:*")
        got = wait_delivered(out, backlog)
        elapsed = max(got[i][0] for i in backlog) - began
        cpu = stack.hooks_cpu()  # the workers started afresh: their CPU is all this run's
        results["throughput"] = {
            "events": len(backlog),
            "seconds": round(elapsed, 2),
            "deliveries_per_s": round(len(backlog) / elapsed, 1),
            "worker_cpu_ms_per_delivery": round(cpu * 1000 / len(backlog), 2),
        }
        log(f"  throughput: {results['throughput']}")
        start = last_event_id(stack)
        made = paced_payments(stack, users, LATENCY_RATE, max(seconds * 2, 5.0))
        ids = event_ids_after(stack, start)
        latencies = _latency(wait_delivered(out, ids), ids)
        results["latency"] = {
            "payments_per_s": LATENCY_RATE,
            "payments": made,
            "events": len(ids),
            "p50_ms": _ms(latencies, 0.5),
            "p99_ms": _ms(latencies, 0.99),
            "poll_s": 0.25,
        }
        log(f"  latency: {results['latency']}")
        bad = sum(1 for line in out.read_text().splitlines() if line.startswith("BAD"))
        results["verification_failures"] = bad
        return results
    finally:
        if receiver is not None:
            receiver.terminate()
            receiver.wait(10)
        stack.stop()


def section(hooks: dict[str, Any]) -> list[str]:
    """RESULTS.md's webhook section."""
    box, through, latency = hooks["outbox"], hooks["throughput"], hooks["latency"]
    http = hooks["outbox_http"]
    rows = [
        (
            f"POST /v1/pay through the whole stack ({http['connections']} connections):"
            " req/s with / without the events insert",
            f"{http['with_events_rps']} / {http['without_events_rps']}"
            f" ({http['slowdown_pct']} % fewer pays/s)",
        ),
        (
            "POST /v1/pay through the whole stack: the stack's CPU ms per pay with / without",
            f"{http['with_events_cpu_ms']} / {http['without_events_cpu_ms']}"
            f" ({http['cpu_cost_pct']:+.1f} %)",
        ),
    ]
    for side, what in (("deployed", "workers fanning out"), ("insert_only", "workers stopped")):
        f = box[side]
        rows += [
            (
                f"pay ceiling, {what}: pays/s with / without the events insert",
                f"{f['with_events_rps']} / {f['without_events_rps']}"
                f" ({f['slowdown_pct']} % fewer pays/s)",
            ),
            (
                f"pay ceiling, {what}: CPU ms per pay with / without",
                f"{f['with_events_cpu_ms']} / {f['without_events_cpu_ms']}"
                f" ({f['cpu_cost_pct']:+.1f} %)",
            ),
        ]
    rows += [
        (
            f"deliveries/s draining a backlog of {through['events']} events",
            through["deliveries_per_s"],
        ),
        ("delivery worker CPU per delivery", f"{through['worker_cpu_ms_per_delivery']} ms"),
        (
            f"event committed → receiver got it, p50, at {latency['payments_per_s']} pays/s",
            f"{latency['p50_ms']} ms",
        ),
        ("same, p99", f"{latency['p99_ms']} ms"),
        ("signatures the receiver could not verify", hooks["verification_failures"]),
    ]
    return [
        "## Webhooks: the outbox's cost on payments, delivery throughput and latency",
        "",
        "bench/hooks.py. The outbox's cost (target: at most 15 %) first as users see it,",
        "POST /v1/pay through two stacks side by side (2 web, 1 app, 2 delivery workers),",
        "one whose processes write no events (bench/hooks_http.py); then at the pay ceiling",
        "of bench/dbceiling.py (the app's `pay_batch_txn`, one payment per transaction, on"
        f" {box['threads']} connections straight to MariaDB,",
        "no HTTP: the worst case, nothing but the pay SQL), on a stack of its own (1 web,",
        "1 app, 2 delivery workers) that then measures deliveries. Runs with and without",
        f"events alternate ({box.get('rounds', ROUNDS)} each, medians). CPU per pay (the"
        " stacks' processes; at",
        "the ceiling also the client's, which runs the app's transaction code) moves less",
        "than req/s with the other load on this shared machine.",
        "",
        "| figure | value |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else ROUNDS
    results = run(seconds, lambda message: print(message, flush=True), rounds)
    print("\n".join(section(results)))
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
