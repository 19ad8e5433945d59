"""Start and stop a private Shillings stack (``make start`` / ``make stop``) for a run."""

from __future__ import annotations

import http.client
import os
import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from shillings_stack.config import StackConfig
from shillings_stack.processes import stack_processes
from shillings_stack.supervisor import process_infos, supervisord_pid

ROOT = Path(__file__).resolve().parent.parent
CACHE_GRACE = 10.0
"""``SHILLINGS_CACHE_GRACE``'s default: seconds after a new cache epoch before it serves."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_base(span: int = 300) -> int:
    """A SHILLINGS_METRICS_PORT_BASE (a multiple of 100, below the ephemeral port range)
    whose next ``span`` ports are free now: stacks started side by side do not collide."""
    for _ in range(200):
        base = random.randrange(100, 320) * 100
        if all(_port_free(port) for port in range(base, base + span)):
            return base
    raise RuntimeError("no free range of metrics ports found")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def caller_env() -> dict[str, str]:
    """This process's environment without make's variables and the stack's settings, so a
    private stack gets only what its caller sets."""
    drop = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "WEB_PROCS", "APP_PROCS", "HOOKS_PROCS"}
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SHILLINGS_")}


def short_tempdir(prefix: str) -> Path:
    """A temp dir with a short path: the stack's unix sockets live under it."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of a live process, in KiB; 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Stack:
    """One running stack: its var dir, HTTP port and process counts."""

    web_procs: int
    app_procs: int
    bcrypt_cost: int
    var: Path = field(default_factory=lambda: short_tempdir("shb-"))
    port: int = field(default_factory=free_port)
    metrics_port_base: int = field(default_factory=free_port_base)
    log: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    """Extra ``SHILLINGS_*`` settings of this stack (``--setting``), e.g. to compare two."""
    _cache_settled: bool = field(default=False, init=False)
    """``wait_cache_settled`` has waited: the profile cache serves."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mysql_socket(self) -> Path:
        return self.var / "run" / "mysqld.sock"

    @property
    def jwt_secret_file(self) -> Path:
        return self.var / "jwt_secret"

    def env(self) -> dict[str, str]:
        env = caller_env()
        env.update(
            SHILLINGS_VAR=str(self.var),
            SHILLINGS_HTTP_HOST="127.0.0.1",
            SHILLINGS_HTTP_PORT=str(self.port),
            SHILLINGS_METRICS_PORT_BASE=str(self.metrics_port_base),
            WEB_PROCS=str(self.web_procs),
            APP_PROCS=str(self.app_procs),
            SHILLINGS_BCRYPT_COST=str(self.bcrypt_cost),
            SHILLINGS_START_TIMEOUT="90",
            # Every bench login comes from 127.0.0.1 and each attempt in flight holds a
            # count of the per-IP login limit: with the default limit (10) a load of 16
            # concurrent correct logins is answered 429. The bench measures logins, not
            # the limiter, so the limit is raised out of its way.
            SHILLINGS_LOGIN_MAX_FAILURES="1000000",
        )
        env.update(self.settings)
        return env

    def wait_cache_settled(self, token: str) -> None:
        """Once per stack: read one account (which starts the profile cache's epoch when
        none exists) and wait ``CACHE_GRACE`` seconds, after which the cache serves; before
        that, reads bypass it and go to the app server."""
        if self._cache_settled:
            return
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
        try:
            conn.request("GET", "/v1/account", headers={"Authorization": f"Bearer {token}"})
            conn.getresponse().read()
        finally:
            conn.close()
        time.sleep(float(self.env().get("SHILLINGS_CACHE_GRACE", CACHE_GRACE)) + 0.5)
        self._cache_settled = True

    def program_env(self, program: str) -> dict[str, str]:
        """The environment supervisord gives ``program`` (``web``, ``app``) in this stack:
        ``env()`` plus its ``environment=`` line of programs.conf."""
        env = self.env()
        conf = (self.var / "etc" / "programs.conf").read_text()
        block = conf.split(f"[program:{program}]", 1)[1]
        line = re.search(r"^environment\s*=\s*(.*)$", block, re.M)
        assert line is not None, f"no environment line for the {program} program"
        for name, value in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line.group(1)):
            env[name] = value
        return env

    def _make(self, target: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        self.log.append(f"$ make {target}\n{proc.stdout}{proc.stderr}")
        return proc

    def start(self) -> None:
        proc = self._make("start")
        if proc.returncode != 0:
            self.stop()
            raise RuntimeError(f"make start failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")

    def stop(self, remove: bool = True) -> None:
        self._make("stop")
        if remove:
            shutil.rmtree(self.var, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        """``{"web_00": pid, "app_00": pid, ...}`` of the running web and app processes."""
        infos = process_infos(StackConfig.from_env(self.env()))
        return {
            i["name"]: int(i["pid"])
            for i in infos
            if i["group"] in ("web", "app") and int(i.get("pid") or 0) > 0
        }

    def cpu_seconds(self) -> dict[int, tuple[str, float]]:
        """CPU time (user + system) so far of every process of this stack (supervisord
        included: it relays what the programs write to stdout), by pid."""
        tick = os.sysconf("SC_CLK_TCK")
        out = {}
        cfg = StackConfig.from_env(self.env())
        supervisor = supervisord_pid(cfg)
        for pid in stack_processes(cfg) | ({supervisor} if supervisor else set()):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                continue
            name = stat.split("(", 1)[1].rsplit(")", 1)[0]
            fields = stat.rsplit(")", 1)[1].split()
            out[pid] = (name, (int(fields[11]) + int(fields[12])) / tick)
        return out

    def peak_rss(self) -> dict[str, int]:
        return {name: peak_rss_kib(pid) for name, pid in sorted(self.pids().items())}
