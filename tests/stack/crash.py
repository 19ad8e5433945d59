"""An unclean stop of a whole stack, as the OOM killer, `docker kill` or a host crash leave
it: every process SIGKILLed at the same moment, then pids the system has given away since."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shillings_stack.config import StackConfig
from shillings_stack.processes import stack_processes
from shillings_stack.supervisor import supervisord_pid


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def kill_everything(var: Path, env: dict[str, str], timeout: float = 30.0) -> set[int]:
    """SIGKILL supervisord and every process of the stack in ``var`` at once: all are
    stopped first (SIGSTOP), so none of them sees another die and reacts (supervisord
    restarting a program, nginx's master forking new workers). The pids killed."""
    cfg = StackConfig.from_env(env)
    pids = set(stack_processes(cfg))
    supervisord = supervisord_pid(cfg)
    assert supervisord is not None, "supervisord is not running"
    pids.add(supervisord)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + timeout
    while any(_state(pid) not in ("T", "gone") for pid in pids):
        assert time.monotonic() < deadline, "processes did not stop"
        time.sleep(0.01)
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    while any(_state(pid) not in ("Z", "gone") for pid in pids):
        assert time.monotonic() < deadline, "processes did not die"
        time.sleep(0.02)
    return pids


def start_decoy(directory: Path) -> subprocess.Popen[bytes]:
    """A live process that looks like another stack's supervisord: what a stale pid file
    may name once the pid has been reused."""
    other = directory / "other-stack"
    other.mkdir(exist_ok=True)
    conf = str(other / "supervisord.conf")
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)", "supervisord", "-c", conf]
    )


def reuse_pids(var: Path, lock_pid: int, decoy_pid: int) -> list[str]:
    """Make what the unclean stop left name live, unrelated processes: each Twisted lock
    link ``<socket>.lock`` points at ``lock_pid``, each pid file at ``decoy_pid``. The
    files changed."""
    changed = []
    run = var / "run"
    for link in run.glob("*.sock.lock"):
        link.unlink()
        os.symlink(str(lock_pid), link)
        changed.append(link.name)
    for name in ("supervisord.pid", "nginx.pid", "mysqld.pid"):
        (run / name).write_text(f"{decoy_pid}\n")
        changed.append(name)
    return changed
