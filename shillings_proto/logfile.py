"""Where a web or app process writes its log: stdout, or a file of its own.

Under supervisord on a host, each process writes its log file itself (``--log-file``),
rotated by size: relaying every line through a supervisord pipe cost supervisord CPU on
every request. In a container the processes log to stdout (``docker logs``) as before.
"""

from __future__ import annotations

import sys
from typing import IO, cast

from twisted.python.logfile import LogFile

ROTATE_BYTES = 20 * 1024 * 1024
"""A log file is rotated (``<name>.1``, ``<name>.2``, ...) once it reaches this size."""
ROTATED_KEPT = 3


def log_stream(path: str | None) -> IO[str]:
    """stdout when ``path`` is empty, else ``path`` opened for appending, rotated by size."""
    if not path:
        return sys.stdout
    stream = LogFile.fromFullPath(path, rotateLength=ROTATE_BYTES, maxRotatedFiles=ROTATED_KEPT)
    return cast(IO[str], stream)
