"""The machine and the software versions a benchmark ran on, and the bcrypt ceiling of
one core (recorded in bench/results.json beside the figures)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import bcrypt

from bench import profile
from bench.seed import PASSWORD


def _first_line(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not found"
    text = (proc.stdout + proc.stderr).strip()
    return text.splitlines()[0] if text else "?"


def _match(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    return found.group(1) if found else text


def machine() -> dict[str, Any]:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
    }


def versions() -> dict[str, str]:
    from google.protobuf.internal import api_implementation

    redis = _first_line(["redis-server", "--version"])
    redis_match = re.search(r"v=(\S+)", redis)
    return {
        "python": platform.python_version(),
        "twisted": metadata.version("twisted"),
        "klein": metadata.version("klein"),
        "protobuf": f"{metadata.version('protobuf')} ({api_implementation.Type()})",
        "pymysql": metadata.version("pymysql"),
        "pyjwt": metadata.version("pyjwt"),
        "bcrypt": metadata.version("bcrypt"),
        "nginx": _first_line(["nginx", "-v"]).replace("nginx version: nginx/", ""),
        "mariadb": _match(r"Ver (\S+)", _first_line(["mariadbd", "--version"])),
        "redis": redis_match.group(1) if redis_match else redis,
        "wrk": _match(r"wrk (\S+)", _first_line(["wrk", "--version"])),
        "py-spy": _first_line([profile.py_spy() or "py-spy", "--version"]).replace("py-spy ", ""),
    }


def bcrypt_per_core(cost: int, seconds: float = 1.0) -> float:
    """bcrypt checks per second on one core at ``cost`` (the login ceiling per core)."""
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=cost))
    done = 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds or done < 2:
        bcrypt.checkpw(PASSWORD.encode(), hashed)
        done += 1
    return round(done / (time.perf_counter() - began), 2)
