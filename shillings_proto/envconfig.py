"""The one reader of ``SHILLINGS_*`` environment variables: typed readers, the shared
defaults (runtime directory, socket paths), and settings declared on dataclass fields
(variable name, default, meaning) from which each process kind's typed settings are read
and the README's configuration tables are generated (``python -m shillings_proto.configdoc``)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from shillings_proto.secrets import SecretError, checked_secret, load_or_create_secret

Reader = Callable[[Mapping[str, str], str, Any], Any]
"""Reads one variable: ``(environ, name, default) -> value``; raises ``ConfigError``."""

LOG_LEVELS = ("debug", "info", "warn", "error", "critical")
DEFAULT_VAR = "./var"


class ConfigError(ValueError):
    """An environment variable has an unusable value."""


@dataclasses.dataclass(frozen=True)
class Setting:
    """One environment variable: its name, default, meaning, and how it is read."""

    env: str
    default: Any
    doc: str
    read: Reader
    shown: str | None = None
    """The default as the README shows it (``None``: the default itself, or ``—``)."""

    def row(self) -> tuple[str, str, str]:
        """``(variable, default, meaning)`` for a configuration table."""
        if self.shown is not None:
            shown = self.shown
        elif self.default is None or self.default == "":
            shown = "—"
        elif isinstance(self.default, bool):
            shown = f"`{int(self.default)}`"
        elif isinstance(self.default, tuple):
            shown = f"`{','.join(self.default)}`"
        elif isinstance(self.default, float) and self.default.is_integer():
            shown = f"`{int(self.default)}`"
        else:
            shown = f"`{self.default}`"
        return f"`{self.env}`", shown, self.doc


def setting(
    env: str,
    default: Any,
    doc: str,
    read: Reader | None = None,
    *,
    shown: str | None = None,
    required: bool = False,
) -> Any:
    """A dataclass field read from ``env`` (``required``: the field has no default of its
    own, e.g. a value derived from other variables)."""
    meta = {"setting": Setting(env, default, doc, read or env_text, shown)}
    if required:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def settings_of(cls: type) -> list[tuple[str, Setting]]:
    """``(field name, Setting)`` of every field of dataclass ``cls`` read from a variable."""
    return [
        (f.name, f.metadata["setting"]) for f in dataclasses.fields(cls) if "setting" in f.metadata
    ]


def read_settings(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    """Every setting of ``cls`` read from ``env``, by field name (in field order)."""
    return {name: s.read(env, s.env, s.default) for name, s in settings_of(cls)}


def markdown_table(rows: Iterable[tuple[str, str, str]]) -> str:
    """A README configuration table of ``(variable, default, meaning)`` rows (already
    formatted: the stack's variables can be rendered with this too)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| {var} | {default} | {meaning} |" for var, default, meaning in rows]
    return "\n".join(lines) + "\n"


def settings_table(cls: type, extra: Iterable[Setting] = ()) -> str:
    """The configuration table of dataclass ``cls``'s settings, plus ``extra`` variables
    its readers consult (e.g. the secret file)."""
    return markdown_table([s.row() for _, s in settings_of(cls)] + [s.row() for s in extra])


def var_dir(env: Mapping[str, str]) -> str:
    """``SHILLINGS_VAR``, the runtime directory; unset or empty: ``./var``."""
    return env.get("SHILLINGS_VAR") or DEFAULT_VAR


def run_path(env: Mapping[str, str], name: str) -> str:
    """Absolute path of ``name`` (e.g. ``redis.sock``) in ``$SHILLINGS_VAR/run``."""
    return os.path.join(os.path.abspath(var_dir(env)), "run", name)


MYSQL_SOCKET = "mysqld.sock"
REDIS_SOCKET = "redis.sock"

SHARED = (
    Setting(
        "SHILLINGS_VAR",
        DEFAULT_VAR,
        "runtime dir: data, sockets, logs, pid files, secret (empty: the default)",
        lambda env, _name, _default: var_dir(env),
    ),
    Setting(
        "SHILLINGS_JWT_SECRET_FILE",
        None,
        "read when `SHILLINGS_JWT_SECRET` is unset; created with mode 0600 on first run",
        lambda env, name, _default: env.get(name),
        shown="`$SHILLINGS_VAR/jwt_secret`",
    ),
)
"""Variables both process kinds read besides their settings' own."""


def env_text(env: Mapping[str, str], name: str, default: Any) -> Any:
    """``name`` as a string; unset or empty: ``default``."""
    return env.get(name) or default


def ints(low: int, high: int | None = None) -> Reader:
    """A reader of an integer in [low, high]."""
    return lambda env, name, default: env_int(env, name, default, low, high)


def choice(choices: tuple[str, ...]) -> Reader:
    """A reader of one of ``choices`` (lower-cased)."""
    return lambda env, name, default: env_choice(env, name, default, choices)


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


def jwt_secret(env: Mapping[str, str], name: str = "SHILLINGS_JWT_SECRET", _: Any = None) -> str:
    """SHILLINGS_JWT_SECRET, else the secret file (SHILLINGS_JWT_SECRET_FILE, default
    ``<var>/jwt_secret``, created on first run); at least 32 characters either way."""
    try:
        if env.get(name):
            return checked_secret(env[name], name)
        return load_or_create_secret(
            env.get("SHILLINGS_JWT_SECRET_FILE") or os.path.join(var_dir(env), "jwt_secret")
        )
    except SecretError as e:
        raise ConfigError(str(e)) from None
