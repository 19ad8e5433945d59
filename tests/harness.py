"""Start private MariaDB and Redis processes for tests: temp data dirs, unix sockets only."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def _find(name: str) -> str:
    for candidate in (shutil.which(name), f"/usr/sbin/{name}", f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError(f"{name} not found: run `make setup` (installs it from apt)")


def _wait_for_socket(
    path: str, proc: subprocess.Popen[bytes], what: str, log: str, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}")
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                return
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.02)
    raise RuntimeError(f"{what} did not open {path} within {timeout}s; see {log}")


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    socket: str
    datadir: str
    log: str
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MariaDB(Process):
    def dsn(self, database: str) -> str:
        """The DSN format the app server reads (SHILLINGS_MYSQL_DSN)."""
        return f"mysql://root@localhost/{database}?unix_socket={self.socket}"


def start_mariadb(root: str) -> MariaDB:
    """Initialise a data dir under ``root`` and start mariadbd on a unix socket, no TCP."""
    datadir = os.path.join(root, "mysql")
    sock = os.path.join(root, "mysqld.sock")
    log = os.path.join(root, "mysqld.log")
    install = [
        _find("mariadb-install-db"),
        "--no-defaults",
        f"--datadir={datadir}",
        "--user=root" if os.geteuid() == 0 else f"--user={os.getenv('USER', 'nobody')}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
        "--skip-name-resolve",
    ]
    install_log = os.path.join(root, "mariadb-install.log")
    # Seen failing once in ~8 runs on a heavily loaded machine: try again on a clean datadir
    # before giving up, and say why it failed.
    for attempt in (1, 2):
        shutil.rmtree(datadir, ignore_errors=True)
        os.makedirs(datadir)
        with open(install_log, "wb") as out:
            done = subprocess.run(install, stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode == 0:
            break
        if attempt == 2:
            with open(install_log, encoding="utf-8", errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError(f"mariadb-install-db exited {done.returncode}:\n{tail}")
    args = [
        _find("mariadbd"),
        "--no-defaults",
        f"--datadir={datadir}",
        f"--socket={sock}",
        "--skip-networking",
        f"--pid-file={os.path.join(root, 'mysqld.pid')}",
        f"--log-error={log}",
        "--innodb-buffer-pool-size=64M",
        "--innodb-flush-log-at-trx-commit=2",
        "--max-connections=500",
    ]
    if os.geteuid() == 0:
        args.append("--user=root")
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_socket(sock, proc, "mariadbd", log)
    return MariaDB(proc=proc, socket=sock, datadir=datadir, log=log)


def start_redis(root: str) -> Process:
    """Start redis-server on a unix socket under ``root``, no TCP, no persistence."""
    datadir = os.path.join(root, "redis")
    os.makedirs(datadir, exist_ok=True)
    sock = os.path.join(root, "redis.sock")
    log = os.path.join(root, "redis.log")
    proc = subprocess.Popen(
        [
            _find("redis-server"),
            "--port",
            "0",
            "--unixsocket",
            sock,
            "--unixsocketperm",
            "700",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            datadir,
            "--logfile",
            log,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for_socket(sock, proc, "redis-server", log)
    return Process(proc=proc, socket=sock, datadir=datadir, log=log)


SHM = Path("/dev/shm")
SCRATCH_PREFIX = "shl-tmp-"
OWNER_LOCK = "owner.lock"
"""In each scratch dir: a file its session holds an exclusive ``flock`` on while it lives
(the kernel drops the lock when the process ends, however it ends)."""
_held_locks: list[int] = []


def make_scratch(parent: Path) -> str:
    """A new scratch dir under ``parent``, locked by this process for as long as it lives.
    The lock is taken on a file of another name, then renamed: a cleaner never finds
    ``OWNER_LOCK`` unlocked in a live session's dir."""
    scratch = tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=parent)
    fd, staging = tempfile.mkstemp(dir=scratch)  # not inherited by the servers started
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(staging, os.path.join(scratch, OWNER_LOCK))
    _held_locks.append(fd)
    return scratch


def _processes_using(path: Path) -> list[int]:
    """This user's processes whose command line names a file under ``path`` (the private
    MariaDB and Redis, a stack's supervisord and nginx master)."""
    needle = str(path).encode() + b"/"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid == os.getuid() and needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue  # gone meanwhile
    return found


def _running(pid: int) -> bool:
    """Not ended (a zombie has: only its parent's wait is missing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _stop(pids: list[int], timeout: float = 10.0) -> None:
    """SIGTERM (each stops what it started), then SIGKILL after ``timeout`` s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while pids and time.monotonic() < deadline:
            pids = [pid for pid in pids if _running(pid)]
            time.sleep(0.05)
        if not pids:
            return


def remove_stale_scratch(parent: Path) -> list[str]:
    """Remove the scratch dirs under ``parent`` whose session is gone (``OWNER_LOCK`` not
    locked), after stopping the processes it left running there (a session killed outright
    leaves its MariaDB running, holding its files' memory); return them. A dir without the
    lock file (being made, or not one of ours) is left alone."""
    removed = []
    for path in sorted(parent.glob(f"{SCRATCH_PREFIX}*")):
        try:
            fd = os.open(path / OWNER_LOCK, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # its session is running
            continue
        try:
            _stop(_processes_using(path))
            shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
        finally:
            os.close(fd)
    return removed


def use_memory_for_scratch() -> str | None:
    """Make a new directory on the tmpfs /dev/shm (when the machine has a writable one) the
    temp dir of this process (``tempfile``) and of its children (``TMPDIR``); return it.
    First remove the ones killed sessions left there (``remove_stale_scratch``).

    Everything the tests write then stays in memory: the private MariaDB's data dir (one
    database per test), the stacks' var dirs (MariaDB, logs, sockets), ``tmp_path``. Their
    schema changes and commits cost no disk flush. A ``kill -9`` keeps a killed process's
    writes on a tmpfs as on a disk (the kernel holds them), so the crash scenarios test the
    same thing; only a host crash differs, which no test makes."""
    if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
        return None
    remove_stale_scratch(SHM)
    scratch = make_scratch(SHM)
    os.environ["TMPDIR"] = scratch
    tempfile.tempdir = scratch
    return scratch
