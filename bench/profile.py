"""py-spy profiles of running processes, summed up as self time per function and as time
per cost category (the innermost frame of a sample that belongs to a known category)."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CATEGORIES: list[tuple[str, tuple[str, ...]]] = [
    (
        "request log line (twisted.logger)",
        ("log_outcome", "twisted/logger/", "shillings_app/logs.py"),
    ),
    ("JWT verification (PyJWT)", ("jwt/",)),
    ("JSON encode/decode", ("json/",)),
    ("protobuf build/parse", ("google/protobuf", "shillings_pb2")),
    ("MySQL driver (pymysql)", ("pymysql/",)),
    (
        "DB thread hand-off (adbapi, threadpool)",
        (
            "twisted/enterprise/",
            "twisted/python/threadpool",
            "twisted/_threads/",
            "threading.py",
            "queue.py",
        ),
    ),
    ("Redis client (txredisapi)", ("txredisapi",)),
    ("routing (Klein/werkzeug)", ("klein/", "werkzeug/")),
    ("HTTP parsing/writing (twisted.web)", ("twisted/web/",)),
    ("Deferreds and coroutines", ("twisted/internet/defer.py",)),
    ("Int32 framing", ("twisted/protocols/basic.py", "shillings_proto/framing.py")),
    ("socket I/O and reactor loop", ("twisted/internet/",)),
    ("uuid", ("uuid.py",)),
    ("amount parsing (Decimal)", ("shillings_web/money.py", "decimal")),
    ("other shillings code", ("shillings_web/", "shillings_app/")),
]
"""Checked from the innermost frame outwards; the first category that matches wins."""


@dataclass
class Profile:
    """Samples of one process: per function (self time) and per category."""

    name: str
    samples: int = 0
    self_time: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "samples": self.samples,
            "self_top": self.self_time.most_common(12),
            "categories": self.categories.most_common(),
        }


def _short(frame: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py)``."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for category, needles in CATEGORIES:
            if any(needle in frame for needle in needles):
                return category
    return "other"


def summarise(name: str, raw: str) -> Profile:
    """Fold py-spy's ``--format raw`` output (collapsed stacks, one per line)."""
    profile = Profile(name)
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        profile.samples += count
        profile.self_time[_short(frames[-1])] += count
        profile.categories[_category(frames)] += count
    return profile


def py_spy() -> str | None:
    local = ROOT / ".venv" / "bin" / "py-spy"
    if local.exists():
        return str(local)
    return shutil.which("py-spy")


def start_record(pid: int, out: Path, seconds: int, rate: int = 200) -> subprocess.Popen[bytes]:
    """Start ``py-spy record`` of ``pid`` (all threads, idle time excluded) in the background."""
    binary = py_spy()
    if binary is None:
        raise RuntimeError("py-spy not installed: bench/run.sh installs it into .venv")
    return subprocess.Popen(
        [
            binary,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(rate),
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
