"""Scenario 6, a hostile protocol peer straight on an app server's socket: a length prefix
of 2^31-1, a truncated frame then silence, random bytes, unknown commands, 10,000 frames
pipelined. The server stays up, answers other clients, and lets go of every connection."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shillings_proto import MAX_FRAME, pb
from tests.reliability.conftest import APP_IDLE_TIMEOUT_S, Shared
from tests.reliability.report import COLLECTOR
from tests.stack.helpers import Client

pytestmark = pytest.mark.slow

SCENARIO = "6. Hostile protocol peer"
COLLECTOR.describe(SCENARIO, __doc__)
APP = "app:app_00"
PIPELINED = 10_000


UNKNOWN: Any = 99
"""A command number the schema does not define."""


def _frame(request: pb.Request) -> bytes:
    data = request.SerializeToString()
    return struct.pack(">I", len(data)) + data


def _connect(shared: Shared) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(15)
    s.connect(str(shared.stack.var / "run" / "app_00.sock"))
    return s


def _read_exact(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        part = s.recv(min(n - len(data), 1 << 20))
        if not part:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += part
    return data


def _response(s: socket.socket) -> pb.Response:
    (length,) = struct.unpack(">I", _read_exact(s, 4))
    return pb.Response.FromString(_read_exact(s, length))


def _closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while s.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _healthy(shared: Shared) -> None:
    """Another client is answered: a health frame on a new connection, and HTTP via nginx."""
    with _connect(shared) as s:
        s.sendall(_frame(pb.Request(request_id=7, command=pb.HLT, health=pb.HealthRequest())))
        response = _response(s)
    assert (response.request_id, response.status.code) == (7, 200), response
    assert response.health.database_ok
    client = Client(shared.stack.port)
    assert client.call("GET", "/healthz")[0] == 200
    client.close()


def _proc(pid: int) -> tuple[int, int]:
    """Open file descriptors and resident memory (KiB) of ``pid``."""
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    rss = int(next(line.split()[1] for line in status if line.startswith("VmRSS")))
    return fds, rss


def test_hostile_peer(shared: Shared) -> None:
    pid = shared.stack.pid_of(APP)
    assert pid is not None
    _healthy(shared)
    fds_before, rss_before = _proc(pid)
    cases = 0

    # Length prefixes far over the 1 MiB limit: the connection is closed at once.
    for prefix in (2**31 - 1, 2**32 - 1, MAX_FRAME + 1):
        with _connect(shared) as s:
            s.sendall(struct.pack(">I", prefix) + b"\x08\x01")
            assert _closed_by_server(s, 5), prefix
        cases += 1

    # Truncated frames, then silence: others are served meanwhile, the stalled peers are
    # dropped after the idle timeout. Eight of them hold almost 1 MiB each.
    stalled = []
    for n in range(8):
        s = _connect(shared)
        size = MAX_FRAME if n else 100
        s.sendall(struct.pack(">I", size) + b"\x00" * (size - 1 if n else 10))
        stalled.append(s)
    _healthy(shared)
    began = time.monotonic()
    for s in stalled:
        assert _closed_by_server(s, APP_IDLE_TIMEOUT_S + 10)
        s.close()
        cases += 1
    dropped_after = time.monotonic() - began

    # A valid frame with an unknown command, and commands without their body.
    with _connect(shared) as s:
        s.sendall(_frame(pb.Request(request_id=11, command=UNKNOWN)))
        s.sendall(_frame(pb.Request(request_id=12, command=pb.PAY)))
        s.sendall(_frame(pb.Request(request_id=13, command=pb.TPU, login=pb.LoginRequest())))
        answers = {r.request_id: r for r in (_response(s) for _ in range(3))}
        cases += 3
    assert {i: (r.status.code, r.status.reason) for i, r in answers.items()} == {
        i: (400, "invalid_request") for i in (11, 12, 13)
    }

    # 10,000 frames pipelined in one write: every one answered, once.
    with _connect(shared) as s:
        commands = (UNKNOWN, pb.PAY, pb.USR, pb.TXQ)
        batch = b"".join(
            _frame(pb.Request(request_id=i, command=commands[i % 4]))
            for i in range(1, PIPELINED + 1)
        )
        s.sendall(batch)
        seen = [_response(s).request_id for _ in range(PIPELINED)]
        cases += PIPELINED
    assert sorted(seen) == list(range(1, PIPELINED + 1))

    # Random bytes, each on its own connection.
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(st.binary(min_size=1, max_size=2000))
    def random_bytes(data: bytes) -> None:
        with _connect(shared) as s:
            s.sendall(data)
        random_cases.append(data)

    random_cases: list[bytes] = []
    random_bytes()
    cases += len(random_cases)

    _healthy(shared)
    assert shared.stack.pid_of(APP) == pid, "the app server was restarted"
    deadline = time.monotonic() + APP_IDLE_TIMEOUT_S + 10
    fds_after, rss_after = _proc(pid)
    while fds_after > fds_before and time.monotonic() < deadline:
        time.sleep(0.2)
        fds_after, rss_after = _proc(pid)
    COLLECTOR.add(
        SCENARIO,
        fuzz_cases=cases,
        frames_pipelined=PIPELINED,
        stalled_peers_dropped_within_seconds=round(dropped_after, 1),
        app_server_fds_before_after=f"{fds_before} / {fds_after}",
        app_server_rss_mib_before_after=f"{rss_before / 1024:.0f} / {rss_after / 1024:.0f}",
        app_server_restarts=0,
    )
    assert fds_after <= fds_before, (fds_before, fds_after)
    assert rss_after < rss_before + 64 * 1024, (rss_before, rss_after)
    shared.check(SCENARIO)
