"""Shared by the stack tests: the repository root, scripts/stack.py as a module, HTTP calls."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stackctl import ROOT, free_port
from bench.stackctl import stack_module as load_stack_module

SUPERVISORCTL = str(ROOT / ".venv" / "bin" / "supervisorctl")

__all__ = [
    "ROOT",
    "SUPERVISORCTL",
    "Client",
    "MadeStack",
    "clean_env",
    "free_port",
    "load_stack_module",
    "stack_env",
]


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any stack setting or outer make's variables."""
    drop = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "WEB_PROCS", "APP_PROCS"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SHILLINGS_")}
    env.update(overrides)
    return env


def stack_env(
    var: Path, port: int, *, web_procs: int = 2, app_procs: int = 2, **extra: str
) -> dict[str, str]:
    """The environment of a test stack: private var dir and port, cheap bcrypt (unless
    ``extra`` says otherwise)."""
    return clean_env(
        SHILLINGS_VAR=str(var),
        SHILLINGS_HTTP_HOST="127.0.0.1",
        SHILLINGS_HTTP_PORT=str(port),
        WEB_PROCS=str(web_procs),
        APP_PROCS=str(app_procs),
        **{"SHILLINGS_BCRYPT_COST": "4", **extra},
    )


@dataclass
class MadeStack:
    """A stack run by `make` in a private var dir, operated through supervisorctl."""

    var: Path
    port: int
    env: dict[str, str]

    @property
    def conf(self) -> str:
        return str(self.var / "etc" / "supervisord.conf")

    def make(self, target: str, timeout: float = 150.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["make", "--no-print-directory", target],
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SUPERVISORCTL, "-c", self.conf, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )

    def pid_of(self, name: str) -> int | None:
        """The pid supervisord reports for program ``name`` (None while it is not running)."""
        out = self.ctl("pid", name).stdout.strip()
        return int(out) if out.isdigit() and int(out) > 0 else None


class Client:
    """A blocking HTTP/1.1 client with one kept-alive connection (one per thread)."""

    def __init__(self, port: int, token: str | None = None, timeout: float = 15.0) -> None:
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self.conn.request(method, path, body=payload, headers=all_headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        return response.status, json.loads(raw) if raw else {}, response

    def close(self) -> None:
        self.conn.close()
