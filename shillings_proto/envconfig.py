"""Reading typed settings from environment variables, shared by both layers' config modules
(each layer still reads its own variables in its own ``config.py``)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from shillings_proto.secrets import SecretError, checked_secret, load_or_create_secret


class ConfigError(ValueError):
    """An environment variable has an unusable value."""


def env_int(
    env: Mapping[str, str], name: str, default: int, low: int, high: int | None = None
) -> int:
    """``name`` as an integer in [low, high] (``default`` when unset or empty)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{name} must be between {low} and {high or 'any'}, got {value}")
    return value


def env_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    """``name`` as a number of seconds, > 0 and <= 600 (``default`` when unset or empty)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 600:
        raise ConfigError(f"{name} must be > 0 and <= 600 seconds, got {raw!r}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``name`` as 1/0 (also true/false, yes/no, on/off)."""
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 0 or 1, got {raw!r}")


def env_choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    """``name`` lower-cased, one of ``choices``."""
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def jwt_secret(env: Mapping[str, str], var: str) -> str:
    """SHILLINGS_JWT_SECRET, else the secret file (SHILLINGS_JWT_SECRET_FILE, default
    ``<var>/jwt_secret``, created on first run); at least 32 characters either way."""
    try:
        if env.get("SHILLINGS_JWT_SECRET"):
            return checked_secret(env["SHILLINGS_JWT_SECRET"], "SHILLINGS_JWT_SECRET")
        return load_or_create_secret(
            env.get("SHILLINGS_JWT_SECRET_FILE") or os.path.join(var, "jwt_secret")
        )
    except SecretError as e:
        raise ConfigError(str(e)) from None
