"""Baselines (a) nginx ``return 200`` and (b) bare Klein processes behind nginx."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from bench.stackctl import ROOT, free_port, short_tempdir

HERE = Path(__file__).resolve().parent


def _nginx() -> str:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("nginx not found: run make setup")


class Baselines:
    """One nginx (two servers) and ``klein_procs`` Klein processes; ``stop()`` ends them."""

    def __init__(self, klein_procs: int) -> None:
        self.klein_procs = klein_procs
        self.var = short_tempdir("shbb-")
        self.static_port = free_port()
        self.klein_port = free_port()
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def static_url(self) -> str:
        return f"http://127.0.0.1:{self.static_port}/"

    @property
    def klein_url(self) -> str:
        return f"http://127.0.0.1:{self.klein_port}/"

    def _socket(self, n: int) -> Path:
        return self.var / f"k{n}.sock"

    def start(self) -> None:
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.var / sub).mkdir(parents=True, exist_ok=True)
        for n in range(self.klein_procs):
            self._spawn([sys.executable, str(HERE / "klein_const.py"), str(self._socket(n))])
        user = "user root root;" if os.geteuid() == 0 else ""
        values = {
            "user_directive": user,
            "var": str(self.var),
            "static_port": str(self.static_port),
            "klein_port": str(self.klein_port),
            "upstream_servers": "\n".join(
                f"        server unix:{self._socket(n)} max_fails=0;"
                for n in range(self.klein_procs)
            ),
        }
        text = (HERE / "nginx-baseline.conf.template").read_text()
        for key, value in values.items():
            text = text.replace("{{" + key + "}}", value)
        conf = self.var / "nginx.conf"
        conf.write_text(text)
        self._spawn([_nginx(), "-p", str(self.var), "-c", str(conf), "-e", "stderr"])
        self._wait_ready()

    def _spawn(self, cmd: list[str]) -> None:
        log = open(self.var / f"proc{len(self._procs)}.log", "wb")
        self._procs.append(
            subprocess.Popen(
                cmd,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        log.close()

    def _wait_ready(self, within: float = 20.0) -> None:
        deadline = time.monotonic() + within
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            try:
                for url in (self.static_url, self.klein_url):
                    with opener.open(url, timeout=1) as response:
                        response.read()
                if all(self._socket(n).exists() for n in range(self.klein_procs)):
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"baseline servers not ready after {within}s; logs in {self.var}")

    def stop(self) -> None:
        """End every process started here (their own sessions), then remove the dir."""
        for proc in self._procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self._procs = []
        shutil.rmtree(self.var, ignore_errors=True)
