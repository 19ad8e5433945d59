"""The whole stack as users run it: `make start`, the API through nginx, rolling restarts
under traffic, `make stop` leaving nothing behind."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shillings_stack.health import web_healthz
from tests.stack.helpers import Client, MadeStack, free_port, stack_env

pytestmark = pytest.mark.stack


class Stack(MadeStack):
    def pid_of(self, name: str) -> int:  # type: ignore[override]
        pid = super().pid_of(name)
        assert pid is not None, f"no pid for {name}"
        return pid


@pytest.fixture
def stack() -> Iterator[Stack]:
    # Short path: the stack's unix sockets live under it (sun_path is 108 bytes).
    var = Path(tempfile.mkdtemp(prefix="shl-stack-"))
    port = free_port()
    env = stack_env(var, port, SHILLINGS_START_TIMEOUT="60")
    running = Stack(var=var, port=port, env=env)
    try:
        yield running
    finally:
        running.make("stop")
        shutil.rmtree(var, ignore_errors=True)


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (None once it is gone), to survive pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def _children(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


@dataclass
class Traffic:
    """A steady, bounded stream of GET /v1/account and idempotent top-ups."""

    port: int
    token: str
    stop: threading.Event = field(default_factory=threading.Event)
    gets: list[tuple[float, int, str]] = field(default_factory=list)
    get_errors: list[str] = field(default_factory=list)
    post_statuses: list[int] = field(default_factory=list)
    topups_done: int = 0
    topups_failed: list[str] = field(default_factory=list)

    def run_gets(self, worker: int, limit: int = 3000) -> None:
        client = Client(self.port, self.token)
        for i in range(limit):
            if self.stop.is_set():
                break
            rid = f"stk-g{worker}-{i}"
            try:
                status, body, _ = client.call("GET", "/v1/account", headers={"X-Request-Id": rid})
            except Exception as e:
                self.get_errors.append(f"{rid}: {e!r}")
                continue
            self.gets.append((time.monotonic(), status, rid))
            if status != 200:
                self.get_errors.append(f"{rid}: {status} {body}")
            time.sleep(0.005)
        client.close()

    def run_topups(self, limit: int = 200) -> None:
        client = Client(self.port, self.token)
        for i in range(limit):
            if self.stop.is_set():
                break
            key = f"stk-{uuid.uuid4().hex}"
            for _attempt in range(40):
                try:
                    status, body, _ = client.call(
                        "POST",
                        "/v1/topup",
                        {"amount": "1.00"},
                        headers={"Idempotency-Key": key, "X-Request-Id": f"stk-p-{i}"},
                    )
                except Exception as e:
                    self.topups_failed.append(f"{key}: {e!r}")
                    break
                self.post_statuses.append(status)
                if status != 503:
                    break
                time.sleep(0.1)
            if status == 200:
                self.topups_done += 1
            else:
                self.topups_failed.append(f"{key}: {status} {body}")
            time.sleep(0.03)
        client.close()


def _served_request_ids(log: Path) -> set[str]:
    return set(re.findall(r"rid=(stk-[\w-]+)", log.read_text(errors="replace")))


def test_stack_serves_restarts_and_stops_cleanly(stack: Stack) -> None:
    started = stack.make("start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"ready on http://127.0.0.1:{stack.port}" in started.stdout
    # "ready" means every web process is ready, not only the one nginx happened to ask.
    for n in range(2):
        assert web_healthz(stack.var / "run" / f"web_{n:02d}.sock") == 200

    anon = Client(stack.port)
    status, body, _ = anon.call("GET", "/healthz")
    assert (status, body["status"]["code"]) == (200, 200), body

    # signup -> login -> top-up -> pay -> account -> transactions, all through nginx
    for first, email in (("Alice", "alice@example.com"), ("Bob", "bob@example.com")):
        status, body, _ = anon.call(
            "POST",
            "/v1/signup",
            {
                "first_name": first,
                "last_name": "Stack",
                "email": email,
                "phone": "+15550001111",
                "password": "correct horse battery",
            },
        )
        assert status == 201, body
    status, body, response = anon.call(
        "POST", "/v1/login", {"email": "alice@example.com", "password": "correct horse battery"}
    )
    assert status == 200, body
    assert "token=" in (response.getheader("Set-Cookie") or "")
    alice = Client(stack.port, body["token"])
    status, body, _ = alice.call("POST", "/v1/topup", {"amount": "100.00"})
    assert (status, body["balance"]) == (200, "100.00"), body
    status, body, _ = alice.call(
        "POST", "/v1/pay", {"receiver_email": "bob@example.com", "amount": "12.34"}
    )
    assert status == 200, body
    status, body, _ = alice.call("GET", "/v1/account")
    assert (status, body["user"]["balance"]) == (200, "87.66"), body
    status, body, _ = alice.call("GET", "/v1/transactions")
    assert status == 200, body
    assert [t["kind"] for t in body["transactions"]] == ["payment", "topup"]
    assert body["transactions"][0]["amount"] == "12.34"

    # nginx answers its own errors in the envelope, and passes the request id through
    status, body, response = anon.call(
        "POST", "/v1/topup", {"pad": "x" * 70_000}, headers={"X-Request-Id": "stk-big"}
    )
    assert (status, body["status"]["reason"]) == (413, "payload_too_large"), body
    assert response.getheader("X-Request-Id") == "stk-big"

    # Rolling restarts of one web process and one app server under steady traffic.
    web_pid, app_pid = stack.pid_of("web:web_00"), stack.pid_of("app:app_00")
    traffic = Traffic(stack.port, alice.token or "")
    threads = [threading.Thread(target=traffic.run_gets, args=(n,)) for n in range(2)]
    threads.append(threading.Thread(target=traffic.run_topups))
    for thread in threads:
        thread.start()
    windows = []
    try:
        time.sleep(1.0)
        for name in ("web:web_00", "app:app_00"):
            begin = time.monotonic()
            restarted = stack.ctl("restart", name)
            windows.append((begin, time.monotonic()))
            assert restarted.returncode == 0, restarted.stdout + restarted.stderr
            time.sleep(1.0)
    finally:
        traffic.stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert stack.pid_of("web:web_00") != web_pid
    assert stack.pid_of("app:app_00") != app_pid

    assert traffic.get_errors == []
    for begin, end in windows:
        assert any(begin <= t <= end for t, _, _ in traffic.gets), "no GET during a restart"
    assert set(traffic.post_statuses) <= {200, 503}, traffic.post_statuses
    assert traffic.topups_failed == []
    assert traffic.topups_done > 0
    status, body, _ = alice.call("GET", "/v1/account")
    expected_cents = 8766 + 100 * traffic.topups_done
    assert body["user"]["balance"] == f"{expected_cents // 100}.{expected_cents % 100:02d}"

    # Both web processes served the traffic (their request logs carry our request ids).
    served = {n: _served_request_ids(stack.var / "log" / f"web_0{n}.log") for n in range(2)}
    assert served[0] and served[1], {n: len(ids) for n, ids in served.items()}

    # With no web process left, nginx itself answers 503 in the envelope.
    assert stack.ctl("stop", "web:*").returncode == 0
    status, body, response = anon.call("GET", "/v1/account", headers={"X-Request-Id": "stk-down"})
    assert status == 503 and body["status"]["code"] == 503, body
    assert body["status"]["reason"] == "unavailable"
    assert response.getheader("X-Request-Id") == "stk-down"
    assert "Idempotency-Key" not in body["status"]["message"], body
    status, body, _ = alice.call(
        "POST", "/v1/pay", {"receiver_email": "nobody@example.com", "amount": "1.00"}
    )
    assert status == 503 and "the outcome is unknown" in body["status"]["message"], body
    assert stack.ctl("start", "web:*").returncode == 0

    # `make stop` leaves no process behind: supervisord, every program, nginx's workers.
    supervisord = int((stack.var / "run" / "supervisord.pid").read_text())
    pids = [supervisord]
    for line in stack.ctl("pid", "all").stdout.split():
        pids.append(int(line))
    nginx_master = stack.pid_of("nginx")
    workers = _children(nginx_master)
    assert workers, "nginx has no worker processes"
    pids += workers
    assert len(pids) == 1 + 9 + len(workers)  # mariadb, redis, 2 app, 2 web, 2 hooks, nginx
    before = {pid: _start_time(pid) for pid in pids}
    assert all(before.values()), before
    stopped = stack.make("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    alive = [pid for pid, started_at in before.items() if _start_time(pid) == started_at]
    assert alive == []
    status_after = stack.make("status")
    assert "not running" in status_after.stdout


def test_stop_cleans_up_after_supervisord_was_killed(stack: Stack) -> None:
    stack.env.update(WEB_PROCS="1", APP_PROCS="1")
    started = stack.make("start")
    assert started.returncode == 0, started.stdout + started.stderr
    supervisord = int((stack.var / "run" / "supervisord.pid").read_text())
    pids = [int(line) for line in stack.ctl("pid", "all").stdout.split()]
    pids += _children(stack.pid_of("nginx"))
    assert len(pids) >= 6  # mariadb, redis, app, web, nginx and its worker
    before = {pid: _start_time(pid) for pid in pids}

    os.kill(supervisord, signal.SIGKILL)  # its programs are orphaned, still running
    deadline = time.monotonic() + 10
    while _start_time(supervisord) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_start_time(pid) == started_at for pid, started_at in before.items())

    stopped = stack.make("stop")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "leftover" in stopped.stderr
    assert [pid for pid, started_at in before.items() if _start_time(pid) == started_at] == []
