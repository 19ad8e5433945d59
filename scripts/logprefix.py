#!/usr/bin/env python3
"""Run a program with every line it writes prefixed by its name: ``<name> | <line>``.

    logprefix.py COMMAND [ARGS...]

Used by scripts/stack.py in a container (SHILLINGS_LOG_STDOUT=1), where supervisord sends
every program's output to its own stdout, i.e. `docker logs`. The name is supervisord's
process name (SUPERVISOR_PROCESS_NAME, e.g. ``web_01``), else the command's.

The program is exec'd in place (it keeps the pid supervisord signals); a forked helper reads
its stdout and stderr from a pipe and writes the prefixed lines to the original stdout. The
helper ignores stop signals (supervisord signals the whole process group) and exits when the
program and its children have closed the pipe, so no line written while stopping is lost.
"""

from __future__ import annotations

import os
import signal
import sys


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def relay(source: int, sink: int, prefix: bytes) -> None:
    """Copy ``source`` to ``sink`` until end of file, prefixing every line."""
    pending = b""
    while True:
        try:
            chunk = os.read(source, 65536)
        except InterruptedError:
            continue
        if not chunk:
            break
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if lines:
            _write_all(sink, b"".join(prefix + line + b"\n" for line in lines))
    if pending:
        _write_all(sink, prefix + pending + b"\n")


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: logprefix.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    name = os.environ.get("SUPERVISOR_PROCESS_NAME") or os.path.basename(argv[0])
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.close(write_end)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        try:
            relay(read_end, sys.stdout.fileno(), name.encode() + b" | ")
        except OSError:
            os._exit(1)
        os._exit(0)
    os.close(read_end)
    os.dup2(write_end, 1)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        os.write(2, f"logprefix: cannot run {argv[0]}: {e}\n".encode())
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
