"""Fixtures for web tests: an in-process web server on a free port, a treq client, Redis."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_twisted
import treq
from twisted.internet import defer, reactor
from twisted.web.client import HTTPConnectionPool

from shillings_web.config import RedisAddress, WebConfig
from shillings_web.server import WebServer
from tests.polling import poll_until
from tests.web.fakeapp import FakeApp
from tests.web.openapi import check_documented

WEB_REDIS_DB = 1
TEST_SECRET = "web-tests-secret-" + "x" * 32


def flush_redis(socket_path: str, db: int = WEB_REDIS_DB) -> None:
    """Empty the Redis database the web tests use (rate-limit counters, cache)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(socket_path)
    try:
        s.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        received = b""
        for _ in range(100):
            received += s.recv(64)
            if received.count(b"\r\n") >= 2:
                break
        assert received == b"+OK\r\n+OK\r\n", received
    finally:
        s.close()


def make_config(app_servers: list[str], redis_socket: str, secret: str, **over: Any) -> WebConfig:
    config = WebConfig(
        listen="tcp:0:interface=127.0.0.1",
        app_servers=tuple(app_servers),
        redis=RedisAddress(unix_socket=redis_socket, db=WEB_REDIS_DB),
        jwt_secret=secret,
        request_timeout=2.0,
        shutdown_grace=1.0,
        cache_grace=0.0,
    )
    return replace(config, **over)


@dataclass
class Answer:
    code: int
    headers: Any
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        if not values:
            return None
        return values[0] if isinstance(values[0], str) else values[0].decode("latin-1")

    @property
    def reason(self) -> str | None:
        return self.body["status"].get("reason")


class Client:
    """A small treq client for one web server: JSON in, ``Answer`` out, no connection reuse."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.pool = HTTPConnectionPool(reactor, persistent=False)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | None = None,
        token: str | None = None,
        cookie: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        all_headers = dict(headers or {})
        if json_body is not None:
            data = json.dumps(json_body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if cookie is not None:
            all_headers["Cookie"] = f"token={cookie}"
        response = await treq.request(
            method,
            self.base + path,
            data=data,
            headers={k: [v] for k, v in all_headers.items()},
            pool=self.pool,
            timeout=15,
        )
        raw = await response.content()
        assert b"Traceback" not in raw and b'File "' not in raw, raw
        check_documented(method, path, response.code)
        return Answer(response.code, response.headers, raw)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return await self.request("POST", path, json_body=body, **kw)


@dataclass
class Web:
    server: WebServer
    client: Client

    @property
    def config(self) -> WebConfig:
        return self.server.config


async def wait_ready(server: WebServer, within: float, app: bool = True) -> None:
    """Wait (bounded) until Redis is connected (and the profile cache has delivered its
    start's ``outdate_all``) and, with ``app``, one app server connection is live."""
    if app:
        ready = server.pool.when_connected()
        ready.addTimeout(within, reactor)
        try:
            await ready
        except defer.TimeoutError:
            pass
    if await poll_until(reactor, lambda: server.redis.connected, within):
        await server.api.cache.flush()  # the start's outdating, before the test reads


async def start_web(config: WebConfig, *, app: bool = True) -> Web:
    """A web server on ``config``, ready (``wait_ready``; ``app=False``: no app server is
    expected to answer, so do not wait for one)."""
    server = WebServer(config, reactor)
    await server.start()
    await wait_ready(server, 5.0, app)
    return Web(server, Client(f"http://127.0.0.1:{server.port}"))


@pytest_twisted.async_yield_fixture
async def fake_app() -> AsyncIterator[FakeApp]:
    app = FakeApp(reactor)
    await app.start()
    yield app
    await app.stop()


@pytest_twisted.async_yield_fixture
async def edge_web(fake_app: FakeApp, redis_server: Any) -> AsyncIterator[Web]:
    """A web server in front of a fake app server (for edges that never reach the app)."""
    flush_redis(redis_server.socket)
    web = await start_web(make_config([fake_app.address], redis_server.socket, TEST_SECRET))
    yield web
    await web.server.stop()


@pytest.fixture
def web_redis_socket(redis_server: Any) -> str:
    flush_redis(redis_server.socket)
    return str(redis_server.socket)


@pytest_twisted.async_yield_fixture
async def web_with(app_server: Any, web_redis_socket: str) -> AsyncIterator[Any]:
    """Start web servers in front of the real ``app_server`` and the session Redis, with
    ``WebConfig`` overrides (``await web_with(request_timeout=1.0)``); stopped after."""
    started: list[Web] = []

    async def _start(**over: Any) -> Web:
        config = make_config(
            [app_server.address], web_redis_socket, app_server.config.jwt_secret, **over
        )
        started.append(await start_web(config))
        return started[-1]

    yield _start
    for web in started:
        await web.server.stop()


@pytest_twisted.async_yield_fixture
async def web(web_with: Any) -> AsyncIterator[Web]:
    """A web server in front of the real ``app_server`` fixture and the session Redis."""
    yield await web_with()


PASSWORD = "correct horse battery"


async def signup(client: Client, email: str, **over: Any) -> Answer:
    body = {
        "first_name": "Test",
        "last_name": "User",
        "email": email,
        "phone": "+15550001111",
        "password": PASSWORD,
        **over,
    }
    answer = await client.post("/v1/signup", body)
    assert answer.code == 201, answer.raw
    return answer


async def login(client: Client, email: str, password: str = PASSWORD) -> str:
    answer = await client.post("/v1/login", {"email": email, "password": password})
    assert answer.code == 200, answer.raw
    return str(answer.body["token"])


async def user_with_token(client: Client, email: str, topup: str | None = None) -> str:
    """Sign up ``email``, log in, optionally top up; return the token."""
    await signup(client, email)
    token = await login(client, email)
    if topup is not None:
        answer = await client.post("/v1/topup", {"amount": topup}, token=token)
        assert answer.code == 200, answer.raw
    return token
