"""Instructions per request of one app server process, under ``valgrind --tool=callgrind``.

The app server's counterpart of ``bench/callgrind.py``: instruction counts do not move with
the machine's load. A private stack (1 web, 1 app) is started; an extra app server (the
code of ``--code``: this checkout, or another one) runs under callgrind on a UNIX socket of
its own, with the stack's app settings and one group-commit batch in flight at a time
(``SHILLINGS_BATCH_IN_FLIGHT=1``). It is driven over the protocol directly (4-byte length,
protobuf): PAY and TPU of 1 cent between two users. Instrumentation is switched on after
start-up and zeroed after ``--warmup`` requests, then ``--requests`` more are counted, in
two modes:

- ``1``: one request at a time (every batch has one request);
- ``burst``: bursts of ``--burst`` requests written at once: the first starts a batch
  alone, the others wait for it and go as one batch (sizes 1 and ``--burst`` - 1, checked
  against the server's batch size metric). Besides the mean per request, the cost per
  request of the big batch is derived: (burst - batch of 1) / (``--burst`` - 1).

Timer-driven work (the log writer's flush) is counted too, so figures vary by ~1-2 %.
Valgrind serialises the pool's threads; that changes no count that matters here.

    python -m bench.callgrind_app [--code /path/to/checkout] [--ops pay,topup]
    python -m bench.callgrind_app --annotate /tmp/cg-pay   # keep the dumps for annotate
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.stackctl import ROOT, Stack, free_port
from shillings_proto import pb

PASSWORD = "callgrind bench password"
_LENGTH = struct.Struct("!I")


class _Client:
    """Protocol requests on one UNIX socket connection, answers read in order of arrival."""

    def __init__(self, path: str) -> None:
        self._sock = socket.socket(socket.AF_UNIX)
        self._sock.connect(path)
        self._rest = b""
        self._next_id = 1

    def send(self, requests: list[pb.Request]) -> None:
        """Write every request in one ``sendall`` (so the server reads them together)."""
        frames = []
        for request in requests:
            request.request_id = self._next_id
            request.deadline_ms = int((time.time() + 600) * 1000)
            self._next_id += 1
            data = request.SerializeToString()
            frames.append(_LENGTH.pack(len(data)) + data)
        self._sock.sendall(b"".join(frames))

    def receive(self) -> pb.Response:
        while len(self._rest) < 4 or len(self._rest) < 4 + _LENGTH.unpack(self._rest[:4])[0]:
            data = self._sock.recv(65536)
            if not data:
                raise ConnectionError("app server closed the connection")
            self._rest += data
        size = _LENGTH.unpack(self._rest[:4])[0]
        response = pb.Response()
        response.ParseFromString(self._rest[4 : 4 + size])
        self._rest = self._rest[4 + size :]
        return response

    def call(self, request: pb.Request) -> pb.Response:
        self.send([request])
        return self.receive()

    def close(self) -> None:
        self._sock.close()


def _app_env(stack: Stack, listen: str, metrics_port: int) -> dict[str, str]:
    """The stack's environment of its app processes, listening on ``listen``."""
    env = stack.program_env("app")
    env["SHILLINGS_APP_LISTEN"] = listen
    env["SHILLINGS_METRICS_LISTEN"] = f"tcp:{metrics_port}:interface=127.0.0.1"
    env["SHILLINGS_BATCH_IN_FLIGHT"] = "1"
    return env


def _users(client: _Client, tag: str) -> list[tuple[int, str, str]]:
    """Two users (user id, token id, email); the first with money to pay with."""
    users = []
    for n in range(2):
        email = f"cga{n}-{tag}@example.com"
        signup = pb.SignupRequest(
            first_name="C", last_name="G", email=email, phone="+14155550100", password=PASSWORD
        )
        answer = client.call(pb.Request(command=pb.SGN, signup=signup))
        assert answer.status.code == 201, answer.status
        login = pb.LoginRequest(email=email, password=PASSWORD)
        answer = client.call(pb.Request(command=pb.LGN, login=login))
        assert answer.status.code == 200, answer.status
        users.append((answer.login.user.user_id, answer.login.token_id, email))
    user_id, token_id, _ = users[0]
    top = pb.TopupRequest(auth=pb.Auth(user_id=user_id, token_id=token_id), amount=10**8)
    assert client.call(pb.Request(command=pb.TPU, topup=top)).status.code == 200
    return users


def _request_maker(op: str, users: list[tuple[int, str, str]]) -> Callable[[], pb.Request]:
    (user_id, token_id, _), (_, _, payee) = users
    auth = pb.Auth(user_id=user_id, token_id=token_id)
    if op == "pay":
        return lambda: pb.Request(
            command=pb.PAY, pay=pb.PayRequest(auth=auth, receiver_email=payee, amount=1)
        )
    return lambda: pb.Request(command=pb.TPU, topup=pb.TopupRequest(auth=auth, amount=1))


def _batch_sizes(metrics_port: int, op: str) -> tuple[float, float]:
    """(sum of sizes, count) of ``op``'s batches so far, from the server's metrics."""
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=60) as answer:
        text = answer.read().decode()
    found = {}
    for part in ("sum", "count"):
        match = re.search(
            rf'^shillings_app_batch_size_{part}{{[^}}]*"{op}"[^}}]*}} (\S+)', text, re.M
        )
        found[part] = float(match.group(1)) if match else 0.0
    return found["sum"], found["count"]


def measure(
    stack: Stack, code: Path, op: str, warmup: int, n: int, burst: int, keep: Path | None
) -> dict[str, float]:
    """Millions of instructions per request of ``op`` (see the module docstring)."""
    work = Path(tempfile.mkdtemp(prefix="cga-", dir="/tmp"))
    sock = str(work / "app.sock")
    metrics_port = free_port()
    python = code / ".venv" / "bin" / "python"
    if not python.exists():  # a checkout without its own venv: this one's, its code first
        python = ROOT / ".venv" / "bin" / "python"
    command = [str(python), "-m", "shillings_app.cli", "serve", "--log-file", str(work / "app.log")]
    env = _app_env(stack, f"unix:{sock}:mode=600", metrics_port)
    out = str(work / "callgrind.out")
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    proc = subprocess.Popen(
        valgrind + command, cwd=code, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    figures: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 300
        while not os.path.exists(sock):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{op}: the app server did not start")
            time.sleep(0.5)
        client = _Client(sock)
        secret = env.get("SHILLINGS_APP_SECRET")
        if secret:
            hello = client.call(pb.Request(command=pb.HEL, hello=pb.HelloRequest(secret=secret)))
            assert hello.status.code == 200, hello.status
        make = _request_maker(op, _users(client, f"{op}-{metrics_port}"))

        def control(*args: str) -> None:
            subprocess.run(
                ["callgrind_control", *args, str(proc.pid)], check=True, capture_output=True
            )

        def run(size: int, requests: int) -> None:
            for _ in range(requests // size):
                client.send([make() for _ in range(size)])
                for _ in range(size):
                    answer = client.receive()
                    assert answer.status.code == 200, answer.status

        control("-i", "on")
        for mode, size in (("1", 1), ("burst", burst)):
            run(size, warmup)
            before = _batch_sizes(metrics_port, op)
            control("-z")
            run(size, n)
            control("-d")
            after = _batch_sizes(metrics_port, op)
            figures[f"{mode}_batch"] = (after[0] - before[0]) / max(after[1] - before[1], 1)
        client.close()
    finally:
        proc.terminate()
        proc.wait(120)
    dumps = sorted(work.glob("callgrind.out*"), key=lambda p: p.stat().st_mtime)
    counted = [p for p in dumps if "Trigger: dump" in p.read_text()[:4000]]
    if len(counted) < 2:
        raise RuntimeError(f"{op}: {len(counted)} callgrind dumps, expected 2")
    for mode, size, dump in zip(("1", "burst"), (1, burst), counted[:2], strict=True):
        total = re.search(r"^summary: (\d+)", dump.read_text(), re.M)
        assert total is not None, dump
        figures[mode] = int(total.group(1)) / (n // size * size) / 1e6
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(dump, keep / f"callgrind.{op}.{mode}")
    figures["in_batch"] = (figures["burst"] * burst - figures["1"]) / (burst - 1)
    shutil.rmtree(work, ignore_errors=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.callgrind_app", description=__doc__)
    parser.add_argument("--ops", default="pay,topup")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose app code runs")
    parser.add_argument("--warmup", type=int, default=90)
    parser.add_argument("--requests", type=int, default=180)
    parser.add_argument("--burst", type=int, default=9, help="requests written at once")
    parser.add_argument("--annotate", type=Path, help="keep the callgrind dumps in this dir")
    args = parser.parse_args()
    stack = Stack(web_procs=1, app_procs=1, bcrypt_cost=4)
    stack.start()
    try:
        for op in args.ops.split(","):
            f = measure(stack, args.code, op, args.warmup, args.requests, args.burst, args.annotate)
            print(
                f"{op}: {f['1']:.3f} M instructions per request one at a time"
                f" (batches of {f['1_batch']:.1f}); bursts of {args.burst}: {f['burst']:.3f} M"
                f" per request (batches of {f['burst_batch']:.1f} on average), {f['in_batch']:.3f}"
                f" M per request of the batch of {args.burst - 1} ({args.code})",
                flush=True,
            )
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
