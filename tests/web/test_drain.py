"""A stopping web process loses no request written into a kept-alive connection: it
answers with ``Connection: close`` and closes idle connections itself (issue 11 §3)."""

from __future__ import annotations

import http.client
import time

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.threads import deferToThread

from tests.web.conftest import TEST_SECRET, make_config, start_web
from tests.web.fakeapp import FakeApp


def _get(conn: http.client.HTTPConnection) -> tuple[int, str | None]:
    conn.request("GET", "/healthz")
    response = conn.getresponse()
    response.read()
    return response.status, response.getheader("Connection")


def _closed_by_server(conn: http.client.HTTPConnection) -> bool:
    assert conn.sock is not None
    conn.sock.settimeout(5)
    return conn.sock.recv(1) == b""


@pytest_twisted.ensureDeferred
async def test_kept_alive_connections_are_closed_without_losing_a_request(redis_server):
    app = FakeApp(reactor)
    await app.start()
    web = await start_web(make_config([app.address], redis_server.socket, TEST_SECRET))
    busy = http.client.HTTPConnection("127.0.0.1", web.server.port, timeout=10)
    idle = http.client.HTTPConnection("127.0.0.1", web.server.port, timeout=10)
    try:
        for conn in (busy, idle):
            assert await deferToThread(_get, conn) == (200, None)
        assert len(web.server.drainer.open_connections()) == 2
        began = time.monotonic()
        stopping = defer.ensureDeferred(web.server.stop(grace=5.0))
        # Written into a kept-alive connection after the stop began: served, as the last.
        assert await deferToThread(_get, busy) == (200, "close")
        await stopping
        # The idle connection was closed by the server soon, not after the whole grace.
        assert time.monotonic() - began < 3.0
        assert await deferToThread(_closed_by_server, idle)
        assert web.server.drainer.open_connections() == []
    finally:
        busy.close()
        idle.close()
        await app.stop()
