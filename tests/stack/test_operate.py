"""`make restart` and `make scale` operate the running stack with the settings it was started
with, whatever the caller's environment (scaling under traffic: reliability scenario 15)."""

from __future__ import annotations

import http.client
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack.helpers import Client, MadeStack, clean_env, free_port, stack_env

pytestmark = pytest.mark.stack


@pytest.fixture
def stack() -> Iterator[MadeStack]:
    var = Path(tempfile.mkdtemp(prefix="shl-op-"))
    running = MadeStack(var=var, port=free_port(), env={})
    running.env = stack_env(var, running.port, SHILLINGS_START_TIMEOUT="60")
    try:
        yield running
    finally:
        running.make("stop")
        shutil.rmtree(var, ignore_errors=True)


def _pids(stack: MadeStack) -> dict[str, int]:
    names = ["app:app_00", "app:app_01", "web:web_00", "web:web_01"]
    return {name: stack.pid_of(name) or 0 for name in names}


def test_restart_renews_every_process_without_failing_a_get(stack: MadeStack) -> None:
    refused = stack.make("scale")
    assert refused.returncode != 0 and "not running" in refused.stderr, refused.stderr
    started = stack.make("start")
    assert started.returncode == 0, started.stdout + started.stderr
    anon = Client(stack.port)
    signup = {
        "first_name": "Op",
        "last_name": "Erator",
        "email": "op@example.com",
        "phone": "+15550001111",
        "password": "correct horse battery",
    }
    assert anon.call("POST", "/v1/signup", signup)[0] == 201
    login = {"email": signup["email"], "password": signup["password"]}
    status, body, _ = anon.call("POST", "/v1/login", login)
    assert status == 200, body
    anon.close()

    stop = threading.Event()
    answers: list[int] = []
    errors: list[str] = []

    def gets() -> None:
        client = Client(stack.port, body["token"])
        while not stop.is_set():
            try:
                try:
                    status, _, _ = client.call("GET", "/v1/account")
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    status, _, _ = client.call("GET", "/v1/account")  # nginx closed it idle
            except (OSError, http.client.HTTPException) as e:
                errors.append(repr(e))
                continue
            answers.append(status)
            time.sleep(0.005)
        client.close()

    before = _pids(stack)
    thread = threading.Thread(target=gets)
    thread.start()
    try:
        # Neither the port nor the process counts: restart finds them in the running stack.
        operator = MadeStack(stack.var, stack.port, clean_env(SHILLINGS_VAR=str(stack.var)))
        restarted = operator.make("restart", timeout=180)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    after = _pids(stack)
    assert all(after[name] not in (0, before[name]) for name in before), (before, after)
    assert errors == [] and set(answers) == {200}, (errors, set(answers))
    nginx = (stack.var / "etc" / "nginx.conf").read_text()
    assert nginx.count(f"server unix:{stack.var}/run/web_0") == 2
