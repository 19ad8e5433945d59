"""The JWT signing secret shared by both layers: from the environment or a private file."""

from __future__ import annotations

import os
import secrets

MIN_SECRET_LENGTH = 32
"""Shortest secret accepted (HS256 keys under 32 bytes are guessable)."""


class SecretError(ValueError):
    """The configured secret is unusable (empty or too short)."""


def checked_secret(value: str, source: str) -> str:
    """``value`` if it is long enough to sign tokens with; else ``SecretError`` naming
    ``source`` (an environment variable or a file)."""
    if len(value) < MIN_SECRET_LENGTH:
        raise SecretError(
            f"{source}: the JWT secret must be at least {MIN_SECRET_LENGTH} characters"
            f" (got {len(value)}); e.g. `openssl rand -hex 32`"
        )
    return value


def load_or_create_secret(path: str) -> str:
    """Read the secret at ``path``; create it (mode 0600, 64 hex chars) if it does not exist."""
    try:
        with open(path, encoding="ascii") as f:
            return checked_secret(f.read().strip(), path)
    except FileNotFoundError:
        pass
    value = secrets.token_hex(32)
    if write_once(path, value + "\n"):
        return value
    with open(path, encoding="ascii") as f:
        return checked_secret(f.read().strip(), path)


def write_once(path: str, text: str) -> bool:
    """Create ``path`` holding ``text`` (mode 0600, on disk before it has its name, so a crash
    never leaves an empty file); False, writing nothing, if it exists already (another
    process created it first)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    dir_fd = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return True
