"""The endpoints the benchmark measures: one row each, read by the runs, the report and the
plots. A new endpoint is a new row here (and its MODE in bench/lua/shillings.lua)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.seed import PASSWORD, Seeded


@dataclass(frozen=True)
class Endpoint:
    """One benchmarked endpoint.

    ``mode``: the MODE of bench/lua/shillings.lua; ``users``: the Seeded attribute naming
    the users file its requests come from; ``password``: sent by logins; ``ceilings``: the
    baselines its req/s is divided by besides (a) and (b) (none for bcrypt-bound logins:
    see ``http``)."""

    name: str
    label: str
    mode: str
    users: str = "users_file"
    password: str = ""
    ceilings: tuple[str, ...] = ()
    http: bool = True
    """False when the HTTP baselines say nothing about it (bcrypt-bound logins)."""
    duration_factor: float = 1.0
    """Run this many times the bench duration (logins: a round of bcrypt checks is slow)."""
    timeout_s: int = 10

    def users_path(self, seeded: Seeded) -> Path:
        path: Path = getattr(seeded, self.users)
        return path


PAY_CEILING = ("db_pay_ceiling",)

ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(
            "account",
            "GET /v1/account (Redis-cached: every user's profile read once just before)",
            "account",
        ),
        Endpoint("pay", "POST /v1/pay (random users)", "pay", ceilings=PAY_CEILING),
        Endpoint("topup", "POST /v1/topup", "topup", ceilings=PAY_CEILING),
        Endpoint(
            "transactions_10",
            "GET /v1/transactions?limit=10, user with 10 rows",
            "transactions",
            users="history_10_file",
        ),
        Endpoint(
            "transactions_100k",
            "GET /v1/transactions?limit=10, user with 100,000 rows",
            "transactions",
            users="history_100k_file",
        ),
        Endpoint(
            "login",
            "POST /v1/login (bcrypt)",
            "login",
            password=PASSWORD,
            http=False,
            duration_factor=2.0,
            timeout_s=15,
        ),
        Endpoint(
            "hold",
            "POST /v1/holds, then its capture or void, alternately (half the requests each)",
            "hold",
            ceilings=PAY_CEILING,
        ),
        Endpoint(
            "refund",
            "POST /v1/refunds of 0.01 of a seeded payment (random users)",
            "refund",
            users="refunds_file",
            ceilings=PAY_CEILING,
        ),
    )
}
