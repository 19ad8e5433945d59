"""The delivery workers' settings (``shillings-app hooks``), read from environment variables
in one place like the app server's (``shillings_app.config``)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shillings_app.config import WEBHOOK_KEY_FILE, AppConfig
from shillings_app.webhooks.allow import Allow
from shillings_proto.envconfig import (
    SHARED,
    ConfigError,
    Setting,
    env_seconds,
    ints,
    read_settings,
    setting,
    settings_table,
)

DEFAULT_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h,10h,10h,10h,10h"
"""Standard Webhooks' retry schedule (SPEC §7): 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
after the first attempt, then every 10 h, 12 attempts over about 2.8 days."""

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_schedule(text: str) -> tuple[float, ...]:
    """``5s,5m,2h`` (units ms, s, m, h, d; a bare number is seconds) as seconds."""
    delays = []
    for item in text.split(","):
        match = _DURATION.match(item.strip())
        if match is None or float(match.group(1)) <= 0:
            raise ConfigError(f"SHILLINGS_HOOKS_SCHEDULE: {item.strip()!r} is not a duration")
        delays.append(float(match.group(1)) * _UNIT_S[match.group(2) or "s"])
    return tuple(delays)


def _schedule(env: Mapping[str, str], name: str, default: Any) -> tuple[float, ...]:
    return parse_schedule(env.get(name) or default)


def _seconds(env: Mapping[str, str], name: str, default: Any) -> float:
    return env_seconds(env, name, default)


def _as_app(name: str) -> Any:
    """The app server's setting of field ``name``: the same variable, reader and meaning
    (the two process kinds must agree on the database, the webhook key, the allow list, the
    Galera read mode and the log level)."""
    (found,) = [f for f in dataclasses.fields(AppConfig) if f.name == name]
    s: Setting = found.metadata["setting"]
    return setting(s.env, s.default, s.doc, s.read, shown=s.shown, required=True)


@dataclass(frozen=True)
class HooksConfig:
    """Everything a delivery worker needs, each field read from its variable."""

    mysql_dsn: str = _as_app("mysql_dsn")
    webhook_key: bytes = _as_app("webhook_key")
    allow: Allow = _as_app("webhook_allow")
    db_sync_wait: int = _as_app("db_sync_wait")
    log_level: str = _as_app("log_level")
    resolver_threads: int = _as_app("webhook_resolver_threads")
    timeout: float = setting(
        "SHILLINGS_HOOKS_TIMEOUT", 10.0, "seconds a delivery may take (a 2xx within it)", _seconds
    )
    lease: float = setting(
        "SHILLINGS_HOOKS_LEASE",
        30.0,
        "seconds a claimed delivery is left to its worker (longer than the timeout); after"
        " that another worker sends it again",
        _seconds,
    )
    schedule: tuple[float, ...] = setting(
        "SHILLINGS_HOOKS_SCHEDULE",
        DEFAULT_SCHEDULE,
        "delays between attempts (ms, s, m, h, d); after the last the delivery is failed, and"
        " its endpoint disabled if it has had no success for their sum",
        _schedule,
        shown=f"`{DEFAULT_SCHEDULE}`",
    )
    jitter: int = setting(
        "SHILLINGS_HOOKS_JITTER",
        10,
        "each retry delay is stretched by a random 0 to N %",
        ints(0, 100),
    )
    concurrency: int = setting(
        "SHILLINGS_HOOKS_CONCURRENCY", 32, "deliveries one worker sends at once", ints(1, 1000)
    )
    batch: int = setting(
        "SHILLINGS_HOOKS_BATCH",
        100,
        "events fanned out, deliveries claimed, per transaction",
        ints(1, 1000),
    )
    poll: float = setting(
        "SHILLINGS_HOOKS_POLL", 0.25, "seconds an idle worker waits before looking again", _seconds
    )
    metrics_listen: str | None = setting(
        "SHILLINGS_METRICS_LISTEN",
        None,
        "Twisted endpoint serving the worker's Prometheus metrics",
        shown="— (the stack sets `tcp:94NN:interface=127.0.0.1`)",
    )

    @property
    def span(self) -> float:
        """Seconds from a first failed attempt to the last retry: how long an endpoint may
        fail without a success before it is disabled."""
        return sum(self.schedule)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HooksConfig:
        """Build the settings from ``environ`` (default: ``os.environ``)."""
        config = cls(**read_settings(cls, os.environ if environ is None else environ))
        if config.lease <= config.timeout:
            raise ConfigError("SHILLINGS_HOOKS_LEASE must be longer than SHILLINGS_HOOKS_TIMEOUT")
        return config

    @classmethod
    def table(cls) -> str:
        """The README's table of the delivery workers' variables."""
        return settings_table(cls, (SHARED[0], WEBHOOK_KEY_FILE))  # not the JWT secret
