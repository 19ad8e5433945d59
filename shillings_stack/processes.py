"""Finding and stopping this stack's processes, and removing what an unclean stop left in var/."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from shillings_stack.config import StackConfig, StackError, find_binary


def proc_cmdline(pid: int) -> bytes:
    """The NUL-separated command line of ``pid`` (empty when it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


_DAEMONS = ("mariadbd", "redis-server", "nginx")
"""Programs that rewrite their own environment block (process titles): found by cmdline."""


def _daemon_executables() -> set[str]:
    found = set()
    for name in _DAEMONS:
        try:
            found.add(os.path.realpath(find_binary(name)))
        except StackError:
            pass
    return found


def stack_processes(cfg: StackConfig) -> set[int]:
    """Live processes of this stack, and everything in their process groups: those carrying
    the SHILLINGS_STACK_DIR marker supervisord sets, and our daemons started on var/ or
    running in it."""
    marker = b"\0SHILLINGS_STACK_DIR=" + str(cfg.var).encode() + b"\0"
    var_arg = str(cfg.var).encode() + b"/"
    daemons = _daemon_executables()
    me = os.getpid()
    marked: set[int] = set()
    groups: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        groups[pid] = int(fields[2])
        if marker in b"\0" + environ:
            marked.add(pid)
        elif exe in daemons and (var_arg in proc_cmdline(pid) or _cwd_in(pid, var_arg)):
            marked.add(pid)  # nginx workers orphaned by their master's SIGKILL: by their cwd
    own_group = os.getpgrp()
    stack_groups = {groups[pid] for pid in marked if pid in groups} - {own_group}
    return marked | {pid for pid, pgrp in groups.items() if pgrp in stack_groups}


def _cwd_in(pid: int, directory: bytes) -> bool:
    try:
        return (os.readlink(f"/proc/{pid}/cwd") + "/").encode().startswith(directory)
    except OSError:
        return False


def stop_leftovers(cfg: StackConfig) -> None:
    """Stop processes of this stack that outlived their supervisord (e.g. it was killed)."""
    left = stack_processes(cfg)
    if left:
        print(f"shillings: stopping leftover processes {sorted(left)}", file=sys.stderr)
        signal_all(left, signal.SIGTERM)
        if not wait_gone(left, 15.0):
            signal_all(left, signal.SIGKILL)
            wait_gone(left, 5.0)


# -- recovery after an unclean stop -----------------------------------------------------
# SIGKILL of supervisord and its children (OOM killer, `docker kill`, a host crash) leaves
# files in var/ that name processes which no longer exist. Pids restart low in a new
# container and after a reboot, so a stale pid may belong to another live process by then.

_PID_FILES = ("supervisord.pid", "nginx.pid", "mysqld.pid")


def socket_served(path: Path) -> bool:
    """True if a process accepts connections on the unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # e.g. a full backlog or a timeout: someone is there
    return True


def recover(cfg: StackConfig) -> list[str]:
    """Remove what an unclean stop left in var/ (the names removed). Call only once no
    process of this stack runs: a socket some process still serves is never touched."""
    if stack_processes(cfg):
        raise StackError(f"processes of this stack still run (var: {cfg.var}); `make stop`")
    removed: list[Path] = []
    run = cfg.run_dir
    sockets = [p for p in run.glob("*.sock") if p.is_socket()] if run.is_dir() else []
    for sock in sorted(sockets):
        if socket_served(sock):
            raise StackError(f"{sock} is served by a process outside this stack; stop it first")
        removed.append(sock)
    # Twisted's unix: endpoints lock <socket>.lock -> <pid> (FilesystemLock). A link that
    # names a reused pid makes the endpoint refuse with "Cannot acquire lock" forever.
    removed += [p for p in run.glob("*.sock.lock") if p.is_symlink()] if run.is_dir() else []
    removed += [run / name for name in _PID_FILES if (run / name).is_file()]
    removed += _stale_secret_files(cfg)
    for path in removed:
        path.unlink(missing_ok=True)
    return [
        str(path.relative_to(cfg.var) if path.is_relative_to(cfg.var) else path) for path in removed
    ]


def _stale_secret_files(cfg: StackConfig) -> list[Path]:
    """Leftovers of a JWT secret or webhook key file creation that was interrupted: its
    ``<file>.<pid>.tmp`` (the creator is dead), and the file itself if it is empty (a crash
    before its data reached the disk; nothing can have been signed or sealed with it)."""
    found = []
    for variable, name in (
        ("SHILLINGS_JWT_SECRET", "jwt_secret"),
        ("SHILLINGS_WEBHOOK_KEY", "webhook.key"),
    ):
        if os.environ.get(variable):
            continue
        path = Path(os.environ.get(f"{variable}_FILE") or cfg.var / name)
        for tmp in path.parent.glob(f"{path.name}.*.tmp"):
            pid = tmp.name[len(path.name) + 1 : -len(".tmp")]
            if pid.isdigit() and not alive(int(pid)):
                found.append(tmp)
        try:
            if path.is_file() and not path.read_bytes().strip():
                found.append(path)
        except OSError:
            pass
    return found


def signal_all(pids: Iterable[int], sig: int) -> None:
    """Send ``sig`` to each of ``pids`` that still exists."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_gone(pids: Iterable[int], timeout: float) -> bool:
    """Wait (at most ``timeout`` s) until none of ``pids`` is alive; True if none is."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if alive(pid)}
        if pending:
            time.sleep(0.1)
    return not pending


def children(parent: int) -> set[int]:
    """The live child processes of ``parent``."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry))
    return found
