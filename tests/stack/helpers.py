"""Shared by the stack tests: the repository root, scripts/stack.py as a module, HTTP calls."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_stack_module() -> ModuleType:
    """``scripts/stack.py`` imported as a module (it is a script, not a package)."""
    name = "shillings_stack_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without any stack setting or outer make's variables."""
    drop = {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "WEB_PROCS", "APP_PROCS"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SHILLINGS_")}
    env.update(overrides)
    return env


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
