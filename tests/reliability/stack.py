"""A whole Shillings stack for the reliability scenarios: started with `make start` in a
private var dir, operated through supervisorctl, its MariaDB read over the unix socket."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql

from shillings_stack.health import web_healthz
from tests.stack.helpers import Client, MadeStack, free_port, stack_env


@dataclass
class Stack(MadeStack):
    """One running stack: its var dir, HTTP port and the environment `make` ran with."""

    @property
    def mysql_socket(self) -> str:
        return str(self.var / "run" / "mysqld.sock")

    def kill9(self, name: str, timeout: float = 60.0) -> tuple[int, int]:
        """SIGKILL program ``name``; wait until supervisord has restarted it. Old, new pid."""
        old = self.pid_of(name)
        assert old is not None, f"{name} is not running"
        os.kill(old, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.pid_of(name)
            if new is not None and new != old:
                return old, new
            time.sleep(0.1)
        raise AssertionError(f"supervisord did not restart {name} within {timeout}s")

    def wait_healthy(self, timeout: float = 60.0) -> None:
        client = Client(self.port, timeout=5.0)
        deadline = time.monotonic() + timeout
        last: Any = None
        try:
            while time.monotonic() < deadline:
                try:
                    status, body, _ = client.call("GET", "/healthz")
                    if status == 200:
                        return
                    last = (status, body)
                except OSError as e:
                    last = e
                time.sleep(0.2)
        finally:
            client.close()
        raise AssertionError(f"stack not healthy after {timeout}s: {last!r}")

    def web_health(self) -> dict[str, int]:
        """/healthz status of each web process, asked on its own unix socket (0: no answer)."""
        return {
            sock.stem: web_healthz(sock, timeout=5.0)
            for sock in sorted((self.var / "run").glob("web_*.sock"))
        }

    def wait_all_web_ready(self, timeout: float = 60.0) -> None:
        """Wait until every web process is healthy (e.g. again, after Redis came back)."""
        deadline = time.monotonic() + timeout
        health = self.web_health()
        while not health or set(health.values()) != {200}:
            assert time.monotonic() < deadline, f"web processes not all healthy: {health}"
            time.sleep(0.1)
            health = self.web_health()

    def redis(self, *args: str) -> bytes:
        """One command to the stack's Redis over its unix socket; the raw RESP answer."""
        parts = [a.encode() for a in args]
        request = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in parts)
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.var / "run" / "redis.sock"))
            s.sendall(request)
            answer = s.recv(4096)
        assert answer[:1] in (b"+", b":", b"$"), answer
        return answer

    def db(self) -> pymysql.connections.Connection:
        """A fresh autocommit connection to the stack's database."""
        return pymysql.connect(
            unix_socket=self.mysql_socket,
            user="root",
            database="shillings",
            autocommit=True,
            connect_timeout=10,
        )

    def query(self, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
        conn = self.db()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def log_text(self, name: str) -> str:
        return (self.var / "log" / f"{name}.log").read_text(errors="replace")


def start_stack(web_procs: int = 2, app_procs: int = 2, **extra: str) -> Stack:
    """`make start` on a free port in a new short temp dir; raises if it does not come up."""
    var = Path(tempfile.mkdtemp(prefix="shl-rel-"))
    port = free_port()
    env = stack_env(
        var,
        port,
        web_procs=web_procs,
        app_procs=app_procs,
        SHILLINGS_START_TIMEOUT="90",
        **{"SHILLINGS_SIGNUP_MAX": "1000", **extra},  # scenarios sign up users from one address
    )
    stack = Stack(var=var, port=port, env=env)
    started = stack.make("start")
    if started.returncode != 0:
        stop_stack(stack)
        raise AssertionError(f"make start failed:\n{started.stdout}\n{started.stderr}")
    return stack


def stop_stack(stack: Stack) -> None:
    """`make stop` (leaves no process behind), then remove the var dir."""
    stopped = stack.make("stop")
    shutil.rmtree(stack.var, ignore_errors=True)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
