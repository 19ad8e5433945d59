"""The JWT signing secret shared by both layers: from the environment or a private file."""

from __future__ import annotations

import os
import secrets


def load_or_create_secret(path: str) -> str:
    """Read the secret at ``path``; create it (mode 0600, 64 hex chars) if it does not exist."""
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    value = secrets.token_hex(32)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    os.unlink(tmp)
    return value
