"""What `make start` clears after an unclean stop, and what it must never touch: checked on
a var dir laid out as a SIGKILLed stack leaves it (the whole cycle: reliability scenario 14)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shillings_stack.config import StackConfig, StackError, find_binary
from shillings_stack.lifecycle import prepare
from shillings_stack.processes import recover, stack_processes, stop_leftovers
from shillings_stack.render import render
from shillings_stack.supervisor import supervisord_pid
from tests.stack.crash import start_decoy
from tests.stack.helpers import clean_env

pytestmark = pytest.mark.stack


@pytest.fixture
def var() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shl-unclean-"))
    (path / "run").mkdir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _config(var: Path) -> Any:
    return StackConfig.from_env(clean_env(SHILLINGS_VAR=str(var)))


def _dead_socket(path: Path) -> None:
    """A socket file whose server is gone (bound, then closed without unlinking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(path))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_an_unclean_stop_are_removed(var: Path) -> None:
    run = var / "run"
    for name in ("app_00", "app_01", "web_00", "mysqld", "redis", "supervisor"):
        _dead_socket(run / f"{name}.sock")
    # Twisted's lock links naming pids now used by live, unrelated processes (1 and us).
    os.symlink("1", run / "app_00.sock.lock")
    os.symlink(str(os.getpid()), run / "web_00.sock.lock")
    os.symlink(str(os.getpid()), run / "app_01.sock.lock")
    for name in ("supervisord.pid", "nginx.pid", "mysqld.pid"):
        (run / name).write_text(f"{os.getpid()}\n")
    interrupted = var / f"jwt_secret.{_dead_pid()}.tmp"
    interrupted.write_text("")
    (var / "jwt_secret").write_bytes(b"")  # named before its data reached the disk
    (var / f"webhook.key.{_dead_pid()}.tmp").write_text("")
    (var / "webhook.key").write_bytes(b"")
    in_progress = var / f"jwt_secret.{os.getpid()}.tmp"  # its creator still runs
    in_progress.write_text("")
    keep = [run / "notes.txt", var / "mysql" / "ibdata1"]
    for path in keep:
        path.parent.mkdir(exist_ok=True)
        path.write_text("data")

    removed = recover(_config(var))

    assert sorted(os.listdir(run)) == ["notes.txt"]
    assert "run/app_00.sock.lock" in removed and "run/supervisord.pid" in removed
    assert not interrupted.exists() and not (var / "jwt_secret").exists()
    assert not list(var.glob("webhook.key*"))
    assert in_progress.exists()
    assert all(path.read_text() == "data" for path in keep)


def test_a_complete_secret_file_is_kept(var: Path) -> None:
    (var / "jwt_secret").write_text("a" * 64 + "\n")
    (var / "webhook.key").write_text("A" * 44 + "\n")
    assert recover(_config(var)) == []
    assert (var / "jwt_secret").read_text() == "a" * 64 + "\n"
    assert (var / "webhook.key").read_text() == "A" * 44 + "\n"


def test_a_socket_still_served_is_never_removed(var: Path) -> None:
    run = var / "run"
    _dead_socket(run / "app_00.sock")
    os.symlink("1", run / "app_00.sock.lock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
        live.bind(str(run / "web_00.sock"))
        live.listen(1)
        os.symlink(str(os.getpid()), run / "web_00.sock.lock")
        with pytest.raises(StackError, match=r"web_00\.sock is served"):
            recover(_config(var))
    # Nothing was removed: not even the stale files next to the live socket.
    assert sorted(os.listdir(run)) == [
        "app_00.sock",
        "app_00.sock.lock",
        "web_00.sock",
        "web_00.sock.lock",
    ]


def test_a_reused_pid_is_not_taken_for_our_supervisord(var: Path) -> None:
    cfg = _config(var)
    render(cfg)
    decoy = start_decoy(var)
    ours = var / "bin" / "supervisord"  # a process with our supervisord's command line
    ours.parent.mkdir()
    ours.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(3600)\n")
    ours.chmod(0o755)
    lookalike = subprocess.Popen([str(ours), "-c", str(cfg.conf)])
    try:
        cfg.pidfile.write_text(f"{decoy.pid}\n")  # another stack's supervisord
        assert supervisord_pid(cfg) is None
        cfg.pidfile.write_text(f"{os.getpid()}\n")  # not a supervisord at all
        assert supervisord_pid(cfg) is None
        cfg.pidfile.write_text(f"{lookalike.pid}\n")
        assert supervisord_pid(cfg) == lookalike.pid
    finally:
        for process in (decoy, lookalike):
            process.kill()
            process.wait()


def test_start_never_takes_a_live_stack_for_leftovers(var: Path) -> None:
    """A supervisord serving this stack's socket that the pid file does not name (started by
    hand, pid file lost): start refuses, and kills none of the stack's processes."""
    cfg = _config(var)
    program = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(3600)"],
        env={**clean_env(), "SHILLINGS_STACK_DIR": str(var)},
    )
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as live:
            live.bind(str(cfg.supervisor_socket))
            live.listen(1)
            with pytest.raises(StackError, match="does not name it"):
                prepare(cfg)
        assert program.poll() is None, "a program of the live stack was stopped"
        assert cfg.supervisor_socket.exists()
    finally:
        program.kill()
        program.wait()


def test_orphans_are_found_by_their_working_directory(var: Path) -> None:
    """nginx workers whose master was SIGKILLed keep the HTTP port, and their command line
    ("nginx: worker process") names no path: they are the stack's by their cwd in var/."""
    cfg = _config(var)
    (var / "nginx").mkdir()
    redis = find_binary("redis-server")
    daemon = subprocess.Popen(
        [redis, "--port", "0", "--unixsocket", "r.sock", "--save", ""],
        cwd=var / "nginx",
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while os.readlink(f"/proc/{daemon.pid}/exe") != os.path.realpath(redis):
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.01)
        assert daemon.pid in stack_processes(cfg)
        stop_leftovers(cfg)
        assert daemon.wait(timeout=20) is not None
    finally:
        daemon.kill()
        daemon.wait()
