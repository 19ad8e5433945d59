"""``shillings-app reconcile``: check the ledger in the database and report.

Eight checks, over one consistent snapshot (a reconcile of a running stack sees each
payment entirely or not at all):

- every balance equals the replay of its transactions (received minus sent);
- the sum of the balances equals the sum of the top-ups (money is neither created nor lost);
- no balance is negative;
- no ``available`` is negative (active holds never reserve more than the balance);
- every hold's captures agree with it (a captured hold has exactly one capture, of its
  captured amount, at most its amount; any other hold none);
- every stored idempotency key names an existing transaction made by the key's user (its
  sender, or for a top-up its receiver);
- every hold command's key names a hold of its user (payer of a created one, receiver of a
  captured or voided one), and a capture's key a capture of that hold;
- every payment or capture's ``refunded_amount`` is the sum of its refunds and at most its
  amount, and every refund names a payment or capture it reverses.

Each failed check names the first ``limit`` users involved and how many there are.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from shillings_app.storage.reconcile import LedgerReader

SHOWN = 20
"""Offending users named per check in the report."""


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``count`` offenders (0 when it holds), the first few
    described in ``details`` and their user ids in ``user_ids``."""

    name: str
    count: int = 0
    user_ids: list[int] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    summary: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.count == 0

    @property
    def unshown(self) -> int:
        """Offenders counted beyond those in ``details`` (0 when none is described)."""
        return self.count - len(self.details) if self.details else 0


@dataclass(frozen=True)
class Report:
    users: int
    transactions: int
    keys: int
    total_balance: int
    total_topups: int
    checks: list[Check]
    seconds: float

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def problems(self) -> list[str]:
        """One line per offender shown, for every failed check."""
        lines = []
        for check in self.checks:
            if not check.ok:
                lines += [f"{check.name}: {d}" for d in check.details or [check.summary]]
                if check.unshown > 0:
                    lines.append(f"{check.name}: … and {check.unshown} more")
        return lines

    def text(self) -> str:
        lines = [
            f"reconcile: {self.users} users, {self.transactions} transactions,"
            f" {self.keys} idempotency keys"
        ]
        for check in self.checks:
            took = f" ({check.seconds:.2f} s)" if check.seconds >= 0.01 else ""
            if check.ok:
                lines.append(f"ok    {check.name}{took}")
                continue
            lines.append(f"FAIL  {check.name}{took}: {check.summary}")
            lines += [f"        {detail}" for detail in check.details]
            if check.unshown > 0:
                lines.append(f"        … and {check.unshown} more")
            if check.user_ids:
                lines.append("      users: " + " ".join(str(u) for u in check.user_ids))
        failed = sum(1 for c in self.checks if not c.ok)
        verdict = "OK" if failed == 0 else f"{failed} check(s) failed"
        lines.append(f"reconcile: {verdict} in {self.seconds:.2f} s")
        return "\n".join(lines)


def money(cents: int) -> str:
    """Cents as a decimal string: -150 -> "-1.50"."""
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def reconcile(dsn: str, limit: int = SHOWN) -> Report:
    """Run every check against the database at ``dsn``; pymysql errors propagate."""
    started = time.monotonic()
    reader = LedgerReader(dsn)
    try:
        users, transactions, keys = reader.counts()
        total_balance, total_topups = reader.totals()
        checks = []
        for run in (_replay, _negative, _available, _holds, _keys, _hold_keys, _refunds):
            begun = time.monotonic()
            checks.append(replace(run(reader, limit), seconds=time.monotonic() - begun))
        checks.insert(1, _conservation(total_balance, total_topups))
    finally:
        reader.close()
    return Report(
        users=users,
        transactions=transactions,
        keys=keys,
        total_balance=total_balance,
        total_topups=total_topups,
        checks=checks,
        seconds=time.monotonic() - started,
    )


def _replay(reader: LedgerReader, limit: int) -> Check:
    found = reader.replay_mismatches(limit)
    return Check(
        "balances equal the replay of their transactions",
        found.count,
        [row[0] for row in found.rows],
        [f"user {u}: balance {money(b)}, transactions say {money(r)}" for u, b, r in found.rows],
        f"{found.count} user(s) differ",
    )


def _conservation(total_balance: int, total_topups: int) -> Check:
    name = "sum of balances equals sum of top-ups"
    if total_balance == total_topups:
        return Check(name)
    gap = total_balance - total_topups
    return Check(
        name,
        1,
        summary=f"balances {money(total_balance)}, top-ups {money(total_topups)}"
        f" ({'created' if gap > 0 else 'lost'}: {money(abs(gap))})",
    )


def _negative(reader: LedgerReader, limit: int) -> Check:
    found = reader.negative_balances(limit)
    return Check(
        "no balance is negative",
        found.count,
        [row[0] for row in found.rows],
        [f"user {u}: balance {money(b)}" for u, b in found.rows],
        f"{found.count} user(s) below zero",
    )


def _keys(reader: LedgerReader, limit: int) -> Check:
    found = reader.key_mismatches(limit)
    return Check(
        "every idempotency key names a transaction of its user",
        found.count,
        sorted({user_id for user_id, *_ in found.rows}),
        [_key_problem(*row) for row in found.rows],
        f"{found.count} key(s) without their transaction",
    )


def _key_problem(user_id: int, key: str, transaction_id: str, maker: int | None) -> str:
    what = f"user {user_id}, key {key!r}"
    if maker is None:
        return f"{what}: transaction {transaction_id} does not exist"
    return f"{what}: transaction {transaction_id} was made by user {maker}"


def _available(reader: LedgerReader, limit: int) -> Check:
    found = reader.negative_available(limit)
    return Check(
        "no available balance is negative",
        found.count,
        [row[0] for row in found.rows],
        [f"user {u}: balance {money(b)}, held {money(h)}" for u, b, h in found.rows],
        f"{found.count} user(s) with holds over their balance",
    )


def _holds(reader: LedgerReader, limit: int) -> Check:
    found = reader.hold_mismatches(limit)
    return Check(
        "every hold's captures agree with it",
        found.count,
        sorted({row[0] for row in found.rows}),
        [
            f"hold {h} ({state}, {money(a)}, captured {money(c)}): {n} capture(s) of {money(s)}"
            for _, h, state, a, c, n, s in found.rows
        ],
        f"{found.count} hold(s) disagree with their captures",
    )


def _hold_keys(reader: LedgerReader, limit: int) -> Check:
    found = reader.hold_key_mismatches(limit)
    return Check(
        "every hold key names a hold of its user",
        found.count,
        sorted({user_id for user_id, *_ in found.rows}),
        [_hold_key_problem(*row) for row in found.rows],
        f"{found.count} key(s) without their hold",
    )


def _hold_key_problem(
    user_id: int, key: str, hold_id: str, transaction_id: str, party: int | None
) -> str:
    what = f"user {user_id}, key {key!r}"
    if party is None:
        return f"{what}: hold {hold_id} does not exist"
    if party != user_id:
        return f"{what}: hold {hold_id} is user {party}'s"
    return f"{what}: transaction {transaction_id} is not a capture of hold {hold_id}"


def _refunds(reader: LedgerReader, limit: int) -> Check:
    found = reader.refund_mismatches(limit)
    return Check(
        "refunds add up to each payment's refunded amount, never above it",
        found.count,
        sorted({row[1] for row in found.rows}),
        [_refund_problem(*row) for row in found.rows],
        f"{found.count} transaction(s) whose refunds do not add up",
    )


def _refund_problem(
    transaction_id: str,
    user_id: int,
    amount: int,
    refunded: int,
    refunds: int,
    refund_of: str | None,
    original_refunded: int | None,
) -> str:
    if refund_of is not None and original_refunded is None:
        return (
            f"refund {transaction_id} by user {user_id} of {money(amount)}: {refund_of}"
            " is not a payment or capture it reverses"
        )
    if refund_of is not None and original_refunded == 0:
        return (
            f"refund {transaction_id} by user {user_id} of {money(amount)}: its original"
            f" {refund_of} counts nothing refunded"
        )
    return (
        f"transaction {transaction_id} to user {user_id}: amount {money(amount)},"
        f" refunded_amount {money(refunded)}, its refunds add up to {money(refunds)}"
    )
