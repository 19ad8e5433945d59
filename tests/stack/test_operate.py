"""`make restart` and `make scale` operate the running stack with the settings it was started
with, whatever the caller's environment; an interrupted scale is completed by running it
again (scaling under traffic: reliability scenario 15)."""

from __future__ import annotations

import http.client
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from shillings_stack.config import StackConfig
from shillings_stack.render import render_programs
from shillings_stack.supervisor import rpc, running_config
from tests.stack.helpers import (
    Client,
    MadeStack,
    clean_env,
    free_port,
    stack_env,
)

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


def test_restart_and_an_interrupted_scale_work_on_the_running_stack(stack: MadeStack) -> None:
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
    # Web processes restart while nginx leaves them out (scenario 15); the app server drains
    # and web processes hold requests while it restarts (scenario 13): no GET fails.
    assert errors == [] and set(answers) == {200}, (errors, set(answers))
    assert answers.count(200) > 0
    nginx = (stack.var / "etc" / "nginx.conf").read_text()
    assert nginx.count(f"server unix:{stack.var}/run/web_0") == 2

    # A scale interrupted half-way (groups grown in place, web processes still on the old
    # app server list, nginx not told) is completed by running it again.
    cfg = running_config(StackConfig.from_env(stack.env))
    target = replace(cfg, web_procs=3, app_procs=3)
    (stack.var / "etc" / "programs.conf").write_text(render_programs(target))
    for group in ("app", "web"):
        added = rpc(cfg, "shillings").updateGroup(group)
        assert added == {"added": [f"{group}_02"], "removed": []}
    apps = [f"unix:{stack.var}/run/app_0{n}.sock" for n in range(3)]
    old_list = f"SHILLINGS_APP_SERVERS={apps[0]},{apps[1]}".encode()
    assert old_list in _environ(stack.pid_of("web:web_00") or 0)
    scaled = replace(operator, env={**operator.env, "WEB_PROCS": "3", "APP_PROCS": "3"})
    completed = scaled.make("scale", timeout=180)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    new_list = f"SHILLINGS_APP_SERVERS={','.join(apps)}".encode()
    for n in range(3):
        assert new_list in _environ(stack.pid_of(f"web:web_{n:02d}") or 0)
    nginx = (stack.var / "etc" / "nginx.conf").read_text()
    assert nginx.count(f"server unix:{stack.var}/run/web_0") == 3
    assert "No config updates" in stack.ctl("reread").stdout


def _environ(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
