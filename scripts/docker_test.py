#!/usr/bin/env python3
"""`make docker-test`: build the image and use it the way its users would (stdlib only).

One container (the whole stack under supervisord, SHILLINGS_HTTP_PORT moved to 18080):
healthy, then signup -> top-up -> pay -> transactions at once (the first login after
"healthy" must work), every process uid 10001, one log line per request in `docker logs`
with the program's name; `docker kill` + `docker start` (three times) recovers with the data intact;
`docker stop` is clean (exit 0); a new container on the same volume (with an HTTP proxy in
its environment that the health check must ignore) still has the data.

docker-compose.yml (`--compatibility`, `--scale web=3`): every service healthy by its own
check, the same flow through nginx, `kill` + `start` recovers, `stop` exits 0 everywhere,
new containers (`rm` + `up`) keep the data.

Run by scripts/docker_test.sh, which installs Docker, starts dockerd and builds stand-in
base images when needed. Ports are published on 127.0.0.1 only. Exit status 0: all passed.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
COMPOSE = os.environ.get("DOCKER_COMPOSE", "/usr/bin/docker-compose")
IMAGE = "shillings:latest"
NAME = "shillings-dtest"
PROJECT = "shillingsdtest"
UID = "10001"
PASSWORD = "correct horse battery"

figures: dict[str, Any] = {}


class Failed(Exception):
    """A check of the test failed."""


def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    if check and done.returncode != 0:
        raise Failed(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def docker(*args: str, check: bool = True) -> str:
    return run(DOCKER, *args, check=check)


passed = 0
"""Checks that held so far (the closing line counts them)."""


def expect(condition: bool, what: str) -> None:
    global passed
    if not condition:
        raise Failed(what)
    passed += 1
    print(f"  ok: {what}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true (bounded); the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise Failed(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.5)
    return time.monotonic() - start


class Api:
    """JSON calls to one base URL, never through a proxy."""

    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def ok(self, expected: int, method: str, path: str, body: Any = None, token: str = "") -> Any:
        status, answer = self.call(method, path, body, token)
        if status != expected:
            raise Failed(f"{method} {path}: {status} {answer} (expected {expected})")
        return answer

    def login(self, email: str) -> str:
        return str(
            self.ok(200, "POST", "/v1/login", {"email": email, "password": PASSWORD})["token"]
        )


def flow(api: Api) -> dict[str, Any]:
    """Signup two users, top up, pay, list: what must survive every restart."""
    tag = secrets.token_hex(4)
    alice, bob = f"alice-{tag}@example.com", f"bob-{tag}@example.com"
    for email in (alice, bob):
        api.ok(201, "POST", "/v1/signup", {"first_name": "D", "last_name": "Test",
               "email": email, "phone": "+15550100", "password": PASSWORD})  # fmt: skip
    token = api.login(alice)
    api.ok(200, "POST", "/v1/topup", {"amount": "100.00"}, token)
    paid = api.ok(200, "POST", "/v1/pay", {"receiver_email": bob, "amount": "12.50"}, token)
    state = {"alice": alice, "bob": bob, "transaction_id": paid["transaction_id"]}
    check_data(api, state)
    return state


def check_data(api: Api, state: dict[str, Any]) -> None:
    """The users, balances and the payment are all there (the first request after healthy
    is a login: it must not find a web process without its app server connections)."""
    token = api.login(state["alice"])
    balance = api.ok(200, "GET", "/v1/account", token=token)["user"]["balance"]
    items = api.ok(200, "GET", "/v1/transactions?limit=10", token=token)["transactions"]
    pay = [t for t in items if t["transaction_id"] == state["transaction_id"]]
    bob = api.ok(200, "GET", "/v1/account", token=api.login(state["bob"]))["user"]["balance"]
    expect(
        balance == "87.50" and bob == "12.50" and len(pay) == 1 and pay[0]["amount"] == "12.50",
        f"data intact (balances {balance} / {bob}, payment listed)",
    )


# -- one container ------------------------------------------------------------------------


def health(container: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", container).strip()


def wait_healthy(container: str, timeout: float = 180.0) -> float:
    def healthy() -> bool:
        status = health(container)
        if status == "unhealthy":
            raise Failed(f"{container} is unhealthy:\n{docker('logs', '--tail', '40', container)}")
        return status == "healthy"

    return until(healthy, timeout, f"{container} healthy")


def start_container(name: str, port: int, volume: str, *env: str) -> None:
    args = ["run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:18080"]
    args += ["-e", "SHILLINGS_HTTP_PORT=18080", "-v", f"{volume}:/app/var"]
    for item in env:
        args += ["-e", item]
    docker(*args, IMAGE)


def docker_logs(container: str) -> str:
    done = subprocess.run([DOCKER, "logs", container], capture_output=True, text=True, check=True)
    return done.stdout + done.stderr


def single_container() -> None:
    print("single container", flush=True)
    name, volume, port = f"{NAME}-1", f"{NAME}-var", free_port()
    api = Api(port)
    start_container(name, port, volume)
    figures["first_start_healthy_s"] = round(wait_healthy(name), 1)
    expect(True, "healthy with SHILLINGS_HTTP_PORT=18080 (health check follows the port)")
    state = flow(api)

    top = docker("top", name, "-eo", "pid,uid,args").splitlines()[1:]
    expect(
        len(top) >= 8 and all(line.split()[1] == UID for line in top),
        f"all {len(top)} processes run as uid {UID}",
    )

    def logged() -> bool:
        logs = docker_logs(name)
        return any(
            line.startswith("web_") and "POST /v1/pay 200" in line for line in logs.splitlines()
        ) and any(
            line.startswith("nginx | ") and '"POST /v1/pay' in line for line in logs.splitlines()
        )

    until(logged, 15, "docker logs: request lines of web_NN and nginx")
    expect(True, "docker logs: one line per request, prefixed with the program's name")

    # Whether a stale lock or pid file names a live process after the restart depends on
    # how the new container's pids fall: three rounds.
    recoveries = []
    for _ in range(3):
        docker("kill", name)
        docker("start", name)
        recoveries.append(round(wait_healthy(name), 1))
        expect(True, "docker kill + docker start: healthy again")
        check_data(api, state)
    figures["kill_recovery_healthy_s"] = recoveries

    start = time.monotonic()
    docker("stop", "-t", "60", name)
    figures["stop_s"] = round(time.monotonic() - start, 1)
    code = docker("inspect", "-f", "{{.State.ExitCode}}", name).strip()
    expect(code == "0", f"docker stop: exit code {code} in {figures['stop_s']} s")
    expect(
        "Shutdown complete" in docker_logs(name),
        "MariaDB shut down cleanly (its last words in docker logs)",
    )
    docker("rm", name)

    second = f"{NAME}-2"
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    start_container(second, port, volume, f"http_proxy={dead_proxy}", f"HTTP_PROXY={dead_proxy}")
    wait_healthy(second)
    expect(True, "new container on the volume healthy (health check ignores HTTP_PROXY)")
    check_data(api, state)
    docker("stop", "-t", "60", second)
    code = docker("inspect", "-f", "{{.State.ExitCode}}", second).strip()
    expect(code == "0", "second container stops with exit code 0")


# -- docker-compose -----------------------------------------------------------------------


def compose_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SHILLINGS_JWT_SECRET=secrets.token_hex(32),
        SHILLINGS_WEBHOOK_KEY=base64.b64encode(secrets.token_bytes(32)).decode(),
        SHILLINGS_APP_SECRET=secrets.token_hex(32),
        SHILLINGS_MYSQL_PASSWORD=secrets.token_hex(16),
        SHILLINGS_PUBLISH_HOST="127.0.0.1",
        SHILLINGS_HTTP_PORT=str(port),
        SHILLINGS_BCRYPT_COST="10",
    )
    return env


def compose(env: dict[str, str], *args: str) -> str:
    return run(COMPOSE, "--compatibility", "-p", PROJECT, *args, env=env)


def compose_containers(env: dict[str, str]) -> dict[str, str]:
    """Container id -> compose service, for this project's containers."""
    ids = compose(env, "ps", "-q").split()
    if not ids:
        return {}
    fmt = '{{.Id}} {{index .Config.Labels "com.docker.compose.service"}}'
    lines = docker("inspect", "-f", fmt, *ids).splitlines()
    return {line.split()[0]: line.split()[1] for line in lines}


COMPOSE_SERVICES = ["app", "hooks", "hooks", "mysql", "nginx", "redis", "web", "web", "web"]
"""The containers of ``up --scale web=3``: docker-compose.yml runs 2 hooks replicas."""


def wait_compose_healthy(env: dict[str, str], timeout: float = 240.0) -> float:
    def healthy() -> bool:
        found = compose_containers(env)
        if len(found) != len(COMPOSE_SERVICES):
            return False
        states = docker("inspect", "-f", "{{.State.Health.Status}}", *found).split()
        if "unhealthy" in states:
            raise Failed(f"unhealthy compose service:\n{compose(env, 'ps')}")
        return all(s == "healthy" for s in states)

    return until(healthy, timeout, "every compose service healthy")


def compose_scenario() -> None:
    print("docker-compose", flush=True)
    port = free_port()
    env = compose_env(port)
    api = Api(port)
    up = ("up", "-d", "--no-build", "--scale", "web=3")
    compose(env, *up)
    figures["compose_up_healthy_s"] = round(wait_compose_healthy(env), 1)
    services = sorted(compose_containers(env).values())
    expect(
        services == COMPOSE_SERVICES,
        f"every service healthy by its own check: {', '.join(services)}",
    )
    state = flow(api)

    compose(env, "kill")
    compose(env, "start")
    wait_compose_healthy(env)
    expect(True, "docker-compose kill + start: healthy again")
    check_data(api, state)

    start = time.monotonic()
    compose(env, "stop")
    figures["compose_stop_s"] = round(time.monotonic() - start, 1)
    found = compose_containers(env)
    codes = docker("inspect", "-f", "{{.State.ExitCode}}", *found).split()
    expect(
        set(codes) == {"0"},
        f"docker-compose stop: every service exits 0 ({figures['compose_stop_s']} s)",
    )
    compose(env, "rm", "-f", "-v")  # the containers and their anonymous volumes only
    compose(env, *up)
    wait_compose_healthy(env)
    check_data(api, state)
    expect(True, "new containers: data kept in the mysql volume")


def cleanup() -> None:
    for name in (f"{NAME}-1", f"{NAME}-2"):
        docker("rm", "-f", name, check=False)
    docker("volume", "rm", "-f", f"{NAME}-var", check=False)
    env = compose_env(free_port())
    run(COMPOSE, "-p", PROJECT, "down", "-v", "--remove-orphans", env=env, check=False)


def main() -> int:
    cleanup()
    try:
        previous = docker("image", "inspect", "-f", "{{.Id}}", IMAGE, check=False).strip()
        start = time.monotonic()
        built = docker("build", "-q", "-t", IMAGE, ".").strip()
        figures["build_s"] = round(time.monotonic() - start, 1)
        if previous and previous != built:
            docker("image", "rm", previous, check=False)  # the build it replaces, if unused
        size = int(docker("image", "inspect", "-f", "{{.Size}}", IMAGE))
        figures["image_mb"] = round(size / 1e6)
        single_container()
        compose_scenario()
    except Failed as e:
        print(f"docker-test FAILED: {e}", file=sys.stderr)
        print(f"docker-test: {passed} passed, 1 failed")
        return 1
    finally:
        print(f"docker-test figures: {json.dumps(figures)}", flush=True)
        cleanup()
    print(f"docker-test: {passed} passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
